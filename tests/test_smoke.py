"""The harness itself: a demo server starts, answers, and stops cleanly."""
import smtplib
import poplib

from conftest import DEMO_PASSWORD


def test_demo_server_accepts_mail_and_serves_it_over_pop3(server):
    with smtplib.SMTP("127.0.0.1", server.smtp_port) as s:
        s.sendmail("a@example.org", ["ta@mmsys.upenn.edu"], b"Subject: x\r\n\r\nhello\r\n")
    p = poplib.POP3("127.0.0.1", server.pop3_port)
    p.user("ta")
    p.pass_(DEMO_PASSWORD)
    assert p.stat()[0] == 1
    p.quit()
    assert server.stop() == 0
