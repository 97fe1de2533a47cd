//! `tidings account add | list | passwd | remove`: account management on a data directory.
//!
//! These commands open the shard databases themselves and write through the same op path as the
//! server (SQLite's locking orders them with the server's writers), so they are safe while a node
//! runs on the same directory.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;

use tidings_core::Address;
use tidings_store::{AccountError, Directory, SqliteStore, Store, StoreError};

use crate::config::Config;

/// An account subcommand.
#[derive(Subcommand)]
pub enum Action {
    /// Create an account. The password comes from TIDINGS_PASSWORD, from --password-stdin, or a prompt.
    Add {
        /// `local@domain`
        address: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the accounts.
    List,
    /// Change an account's password (same password sources as `add`).
    Passwd {
        /// `local@domain`
        address: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set the account's recovery address (where password-reset codes of the HTTP API go), or
    /// remove it with --clear.
    Recovery {
        /// `local@domain`
        address: String,
        /// The recovery address.
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        email: Option<String>,
        /// Remove the recovery address.
        #[arg(long)]
        clear: bool,
    },
    /// Remove an account and all its mail.
    Remove {
        /// `local@domain`
        address: String,
    },
}

/// Runs `action` on the data directory `data`.
///
/// # Errors
/// A message for the person at the terminal: unknown account, address taken, bad password.
pub fn run(config: &Config, data: &Path, action: Action) -> anyhow::Result<()> {
    let mut config = config.clone();
    if crate::serve::is_demo_data_dir(data) {
        // The node maps `localhost` to the demo domain; so must the addresses given here.
        config.apply_demo_domains();
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(data, &config.store).with_context(|| format!("cannot open {}", data.display()))?,
        );
        let directory = Directory::new(store.clone(), &config.mail).map_err(anyhow::Error::msg)?;
        match action {
            Action::Add { address, password_stdin } => {
                let address = parse(&directory, &address)?;
                let password = password(password_stdin, true)?;
                directory.create_account(&address, &password).await.map_err(explain)?;
                println!("created {address}");
            }
            Action::List => {
                for account in store.accounts().await? {
                    println!("{}", account.address);
                }
            }
            Action::Passwd { address, password_stdin } => {
                let address = parse(&directory, &address)?;
                let password = password(password_stdin, true)?;
                directory.set_password(&address, &password).await.map_err(explain)?;
                println!("password changed for {address}");
            }
            Action::Recovery { address, email, clear: _ } => {
                let address = parse(&directory, &address)?;
                let email = email
                    .map(|e| Address::parse(&e, true).with_context(|| format!("{e:?} is not an address")))
                    .transpose()?;
                directory.set_recovery_address(&address, email.as_ref()).await.map_err(|e| explain(e.into()))?;
                match email {
                    Some(email) => println!("recovery address of {address} is {email}"),
                    None => println!("{address} has no recovery address"),
                }
            }
            Action::Remove { address } => {
                let address = parse(&directory, &address)?;
                directory.delete_account(&address).await.map_err(explain)?;
                println!("removed {address}");
            }
        }
        Ok(())
    })
}

fn parse(directory: &Directory, text: &str) -> anyhow::Result<Address> {
    let address = Address::parse(text, true).with_context(|| format!("{text:?} is not an address (local@domain)"))?;
    Ok(directory.canonical(&address))
}

fn explain(e: AccountError) -> anyhow::Error {
    match e {
        AccountError::Store(StoreError::AccountExists(a)) => anyhow::anyhow!("{a} already exists"),
        AccountError::Store(StoreError::NoSuchAccount(a)) => anyhow::anyhow!("there is no account {a}"),
        other => other.into(),
    }
}

/// The new password: TIDINGS_PASSWORD, else one line of stdin, else a prompt asked twice.
fn password(from_stdin: bool, confirm: bool) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("TIDINGS_PASSWORD") {
        return Ok(p);
    }
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password("Password: ").context("cannot read a password from the terminal")?;
    if confirm && rpassword::prompt_password("Again: ")? != first {
        bail!("the passwords differ");
    }
    Ok(first)
}
