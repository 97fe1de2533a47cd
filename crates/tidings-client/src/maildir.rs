//! Maildir directories (the format of Dovecot, Postfix `home_mailbox = Maildir/`, Courier):
//! reading `new/` and `cur/` with the flags in each file name's `:2,` info, and writing `cur/`.
//!
//! # Flags
//!
//! The info letters (<https://cr.yp.to/proto/maildir.html>) map to IMAP flags: `D` \Draft,
//! `F` \Flagged, `P` (passed: resent, forwarded or bounced) the keyword `$Forwarded`, `R`
//! \Answered, `S` \Seen, `T` \Deleted. Lowercase letters are Dovecot keywords: `a` is keyword 0 of
//! the folder's `dovecot-keywords` file, `b` keyword 1, and so on; without that file they are
//! ignored. Messages in `new/` have no flags.
//!
//! # Order and dates
//!
//! Messages are read in the order of Dovecot's `dovecot-uidlist` when the folder has one (their
//! IMAP UID order), the rest by modification time and name. A file's modification time is its
//! internal date (what Dovecot uses), and the writer sets it so.
//!
//! Files are written with LF line ends, as Dovecot and Postfix store them; messages come back with
//! CRLF.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tidings_core::{Flags, SystemFlag};

use crate::MessageRecord;
use crate::eol;

/// The keyword the `P` (passed) info letter stands for (RFC 5788 registry).
pub const PASSED_KEYWORD: &str = "$Forwarded";
/// Most keywords a Maildir folder can name with info letters (`a` to `z`).
pub const LETTER_KEYWORDS_MAX: usize = 26;
/// Largest message file read, in octets.
pub const MESSAGE_BYTES_MAX: u64 = 256 * 1024 * 1024;

const SYSTEM_LETTERS: [(char, SystemFlag); 5] = [
    ('D', SystemFlag::Draft),
    ('F', SystemFlag::Flagged),
    ('R', SystemFlag::Answered),
    ('S', SystemFlag::Seen),
    ('T', SystemFlag::Deleted),
];

/// The flags of a Maildir file name: the letters after `:2,` (nothing for a name without info).
/// `keywords[i]` names the keyword of letter `'a' + i`.
pub fn flags_from_name(name: &str, keywords: &[Option<String>]) -> Flags {
    let mut flags = Flags::new();
    let Some((_, info)) = name.rsplit_once(":2,") else {
        return flags;
    };
    for c in info.chars() {
        if let Some((_, flag)) = SYSTEM_LETTERS.iter().find(|(l, _)| *l == c) {
            flags.set(*flag, true);
        } else if c == 'P' {
            let _ = flags.add_keyword(PASSED_KEYWORD);
        } else if c.is_ascii_lowercase()
            && let Some(Some(keyword)) = keywords.get((c as u8 - b'a') as usize)
        {
            // A keyword IMAP cannot carry is dropped rather than failing the import.
            let _ = flags.add_keyword(keyword);
        }
    }
    flags
}

/// The info suffix (`:2,` and letters in ASCII order) for `flags`; `letter_of` gives the
/// lowercase letter of a keyword, if it has one. `$Forwarded` is written as `P` (and as its
/// keyword letter, which Dovecot reads).
pub fn info_for(flags: &Flags, letter_of: impl Fn(&str) -> Option<char>) -> String {
    let mut letters: Vec<char> = SYSTEM_LETTERS.iter().filter(|(_, f)| flags.has(*f)).map(|(l, _)| *l).collect();
    if flags.has_keyword(PASSED_KEYWORD) {
        letters.push('P');
    }
    letters.extend(flags.keywords().filter_map(letter_of));
    letters.sort_unstable();
    letters.dedup();
    format!(":2,{}", letters.into_iter().collect::<String>())
}

/// Dovecot's `dovecot-keywords` file: lines `INDEX NAME`; index `i` is letter `'a' + i`.
pub fn parse_keywords_file(text: &str) -> Vec<Option<String>> {
    let mut keywords = vec![None; LETTER_KEYWORDS_MAX];
    for line in text.lines() {
        if let Some((index, name)) = line.split_once(' ')
            && let Ok(index) = index.trim().parse::<usize>()
            && index < LETTER_KEYWORDS_MAX
            && !name.trim().is_empty()
        {
            keywords[index] = Some(name.trim().to_owned());
        }
    }
    keywords
}

/// The base names (the part before `:`) in the order of Dovecot's `dovecot-uidlist` (lines
/// `UID [fields] :NAME` after a header line).
pub fn parse_uidlist(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|line| line.split_once(" :").map(|(_, name)| name.trim().to_owned()))
        .map(|name| base_name(&name).to_owned())
        .collect()
}

fn base_name(name: &str) -> &str {
    name.split_once(':').map_or(name, |(base, _)| base)
}

/// The messages of one Maildir folder, read one file at a time.
pub struct MaildirReader {
    keywords: Vec<Option<String>>,
    /// The files still to read, in reading order (reversed: the next one is last).
    pending: Vec<PathBuf>,
}

impl MaildirReader {
    /// Lists the folder's `cur/` and `new/` (files whose names start with `.` are skipped).
    ///
    /// # Errors
    /// When `dir` has neither `cur/` nor `new/` (not a Maildir), or a directory cannot be read.
    pub fn open(dir: &Path) -> io::Result<MaildirReader> {
        let (cur, new) = (dir.join("cur"), dir.join("new"));
        if !cur.is_dir() && !new.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not a Maildir: it has neither cur/ nor new/", dir.display()),
            ));
        }
        let keywords = match fs::read_to_string(dir.join("dovecot-keywords")) {
            Ok(text) => parse_keywords_file(&text),
            Err(_) => Vec::new(),
        };
        let order: HashMap<String, usize> = match fs::read_to_string(dir.join("dovecot-uidlist")) {
            Ok(text) => parse_uidlist(&text).into_iter().enumerate().map(|(i, n)| (n, i)).collect(),
            Err(_) => HashMap::new(),
        };
        let mut files = Vec::new();
        for sub in [cur, new] {
            if !sub.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&sub)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || !entry.file_type()?.is_file() {
                    continue;
                }
                let mtime = entry.metadata()?.modified().unwrap_or(UNIX_EPOCH);
                let rank = order.get(base_name(&name)).copied().unwrap_or(usize::MAX);
                files.push((rank, mtime, name, entry.path()));
            }
        }
        files.sort();
        let pending = files.into_iter().rev().map(|(_, _, _, path)| path).collect();
        Ok(MaildirReader { keywords, pending })
    }

    /// How many messages are left to read.
    pub fn remaining(&self) -> usize {
        self.pending.len()
    }
}

impl Iterator for MaildirReader {
    type Item = io::Result<MessageRecord>;

    fn next(&mut self) -> Option<io::Result<MessageRecord>> {
        let path = self.pending.pop()?;
        Some(read_message(&path, &self.keywords))
    }
}

fn read_message(path: &Path, keywords: &[Option<String>]) -> io::Result<MessageRecord> {
    let metadata = fs::metadata(path)?;
    if metadata.len() > MESSAGE_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is larger than {MESSAGE_BYTES_MAX} octets", path.display()),
        ));
    }
    let octets = eol::lf_to_crlf(&fs::read(path)?);
    let in_new = path.parent().and_then(Path::file_name).is_some_and(|n| n == "new");
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let flags = if in_new { Flags::new() } else { flags_from_name(&name, keywords) };
    let internal_date =
        metadata.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs() as i64);
    Ok(MessageRecord { octets, flags, internal_date, envelope_sender: None })
}

/// Writes messages into a Maildir folder's `cur/` (through `tmp/`), creating the folder if needed.
pub struct MaildirWriter {
    dir: PathBuf,
    /// Keywords with letters, `'a' + index`, including those of an existing `dovecot-keywords`.
    keywords: Vec<Option<String>>,
    /// Keywords that got no letter (more than 26 in the folder).
    dropped: Vec<String>,
    host: String,
    counter: u64,
}

impl MaildirWriter {
    /// Creates `dir` with `tmp/`, `new/` and `cur/` if they are missing.
    ///
    /// # Errors
    /// When a directory cannot be created.
    pub fn create(dir: &Path) -> io::Result<MaildirWriter> {
        for sub in ["tmp", "new", "cur"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        let keywords = match fs::read_to_string(dir.join("dovecot-keywords")) {
            Ok(text) => parse_keywords_file(&text),
            Err(_) => vec![None; LETTER_KEYWORDS_MAX],
        };
        let host = fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned())
            .replace('/', "\\057")
            .replace(':', "\\072");
        Ok(MaildirWriter { dir: dir.to_owned(), keywords, dropped: Vec::new(), host, counter: 0 })
    }

    /// Writes one message into `cur/` with its flags in the name and its internal date as the
    /// modification time. Returns the file's path.
    ///
    /// # Errors
    /// On a file system error.
    pub fn write_message(&mut self, message: &MessageRecord) -> io::Result<PathBuf> {
        for keyword in message.flags.keywords() {
            self.letter_for(keyword);
        }
        let keywords = &self.keywords;
        let info = info_for(&message.flags, |k| {
            keywords
                .iter()
                .position(|x| x.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(k)))
                .map(|i| (b'a' + i as u8) as char)
        });
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        self.counter += 1;
        let unique =
            format!("{}.M{}P{}Q{}.{}", now.as_secs(), now.subsec_micros(), std::process::id(), self.counter, self.host);
        let tmp = self.dir.join("tmp").join(&unique);
        let target = self.dir.join("cur").join(format!("{unique}{info}"));
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&eol::crlf_to_lf(&message.octets))?;
        file.sync_all()?;
        if let Some(secs) = message.internal_date.and_then(|s| u64::try_from(s).ok()) {
            file.set_modified(UNIX_EPOCH + Duration::from_secs(secs))?;
        }
        drop(file);
        fs::rename(&tmp, &target)?;
        Ok(target)
    }

    /// Writes `dovecot-keywords` (when any keyword has a letter) and returns the keywords that
    /// could not be given a letter.
    ///
    /// # Errors
    /// On a file system error.
    pub fn finish(self) -> io::Result<Vec<String>> {
        let lines: String =
            self.keywords.iter().enumerate().filter_map(|(i, k)| k.as_ref().map(|k| format!("{i} {k}\n"))).collect();
        if !lines.is_empty() {
            let tmp = self.dir.join("tmp").join("dovecot-keywords");
            fs::write(&tmp, lines)?;
            fs::rename(&tmp, self.dir.join("dovecot-keywords"))?;
        }
        Ok(self.dropped)
    }

    fn letter_for(&mut self, keyword: &str) {
        if self.keywords.iter().any(|k| k.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(keyword))) {
            return;
        }
        match self.keywords.iter().position(Option::is_none) {
            Some(free) => self.keywords[free] = Some(keyword.to_owned()),
            None if self.keywords.len() < LETTER_KEYWORDS_MAX => self.keywords.push(Some(keyword.to_owned())),
            None => {
                if !self.dropped.iter().any(|d| d == keyword) {
                    self.dropped.push(keyword.to_owned());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tidings-maildir-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn info_letters_map_to_imap_flags() {
        let keywords = parse_keywords_file("0 $Label1\n1 Work\n");
        let f = flags_from_name("1700000000.M1P2.host,S=10,W=11:2,DFPRSTab", &keywords);
        assert_eq!(f.to_string(), "\\Seen \\Answered \\Flagged \\Deleted \\Draft $Forwarded $Label1 Work");
        assert_eq!(flags_from_name("1700000000.M1P2.host", &keywords), Flags::new());
        assert_eq!(flags_from_name("x:2,", &keywords), Flags::new());
        assert_eq!(flags_from_name("x:2,Sz", &keywords).to_string(), "\\Seen", "unknown letters are ignored");
        assert_eq!(flags_from_name("x:1,S", &keywords), Flags::new(), "only version 2 info has flags");
    }

    #[test]
    fn info_is_written_in_ascii_order() {
        let mut f = Flags::new();
        f.set(SystemFlag::Seen, true);
        f.set(SystemFlag::Draft, true);
        f.set(SystemFlag::Answered, true);
        f.add_keyword("$Forwarded").unwrap();
        f.add_keyword("Work").unwrap();
        let info = info_for(&f, |k| match k {
            "Work" => Some('b'),
            "$Forwarded" => Some('a'),
            _ => None,
        });
        assert_eq!(info, ":2,DPRSab");
        assert_eq!(flags_from_name(&format!("x{info}"), &parse_keywords_file("0 $Forwarded\n1 Work\n")), f);
    }

    #[test]
    fn uidlist_gives_base_names_in_uid_order() {
        let text = "3 V1795260219 N4 G0b1\n1 :b.M2P1.h\n2 W12 S11 :a.M1P1.h:2,S\n3 :c.M3P1.h\n";
        assert_eq!(parse_uidlist(text), ["b.M2P1.h", "a.M1P1.h", "c.M3P1.h"]);
    }

    #[test]
    fn written_messages_read_back_with_flags_dates_and_octets() {
        let dir = temp_dir("roundtrip");
        let mut writer = MaildirWriter::create(&dir).unwrap();
        let mut flags = Flags::new();
        flags.set(SystemFlag::Flagged, true);
        flags.add_keyword("Work").unwrap();
        let messages = vec![
            MessageRecord {
                octets: b"Subject: one\r\n\r\nbody\r\n".to_vec(),
                flags: flags.clone(),
                internal_date: Some(1_000_000_000),
                envelope_sender: None,
            },
            MessageRecord {
                octets: b"Subject: two\r\n\r\n".to_vec(),
                flags: Flags::new(),
                internal_date: Some(1_000_000_100),
                envelope_sender: None,
            },
        ];
        for m in &messages {
            let path = writer.write_message(m).unwrap();
            assert!(!fs::read(&path).unwrap().contains(&b'\r'), "files have LF line ends");
        }
        assert!(writer.finish().unwrap().is_empty());
        let back: Vec<MessageRecord> = MaildirReader::open(&dir).unwrap().collect::<io::Result<_>>().unwrap();
        assert_eq!(back, messages);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn messages_in_new_have_no_flags_and_a_directory_without_cur_or_new_is_refused() {
        let dir = temp_dir("new");
        fs::create_dir_all(dir.join("new")).unwrap();
        fs::write(dir.join("new").join("123.M1P1.host:2,S"), b"Subject: n\n\nx\n").unwrap();
        fs::write(dir.join("new").join(".hidden"), b"junk").unwrap();
        let back: Vec<MessageRecord> = MaildirReader::open(&dir).unwrap().collect::<io::Result<_>>().unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].flags, Flags::new());
        assert_eq!(back[0].octets, b"Subject: n\r\n\r\nx\r\n");
        fs::remove_dir_all(&dir).unwrap();
        assert!(MaildirReader::open(&dir).is_err());
    }
}
