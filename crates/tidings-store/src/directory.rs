//! The directory: which domains are local, which account an RCPT address or a login name means,
//! and password checks. Shared by every protocol front-end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tidings_core::{Account, Address, Op, Path, password};

use crate::{DirectoryConfig, Store, StoreError};

/// What a forward-path (RCPT TO) resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// An existing local account (canonical address, aliases applied).
    Local(Address),
    /// A local domain, but no such account.
    UnknownUser,
    /// Not one of our domains.
    NotLocal,
}

/// Why an account could not be created or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The password is unusable (empty, too long).
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a login failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Unknown user, ambiguous bare local part, or wrong password: deliberately one answer.
    #[error("invalid credentials")]
    Invalid,
    /// The store could not be read; the client may retry.
    #[error("temporary failure: {0}")]
    Unavailable(StoreError),
}

/// Resolves addresses and logins against a [`Store`] and the `[mail]` configuration.
pub struct Directory {
    store: Arc<dyn Store>,
    domains: BTreeSet<String>,
    aliases: BTreeMap<String, String>,
    postmaster: Option<Address>,
    /// A hash verified against when the login names no account, so that a wrong user name costs
    /// as long as a wrong password (no user enumeration by timing).
    decoy_hash: String,
    /// Bounds concurrent argon2 work (19 MiB and tens of milliseconds of CPU each) to the CPU
    /// count, so that parallel logins cannot exhaust memory or starve the store's reads.
    hashing: tokio::sync::Semaphore,
}

/// How long a login waits for a free argon2 slot before it is answered with a temporary failure.
const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Directory {
    /// A directory over `store` with the local domains and aliases of `config`.
    ///
    /// # Errors
    /// When a configured domain or the postmaster address is malformed.
    pub fn new(store: Arc<dyn Store>, config: &DirectoryConfig) -> Result<Directory, String> {
        let mut domains = BTreeSet::new();
        for d in config.domains.iter().chain(config.domain_aliases.keys()).chain(config.domain_aliases.values()) {
            if !tidings_core::is_valid_domain(d) {
                return Err(format!("[mail] {d:?} is not a valid domain name"));
            }
            domains.insert(d.to_lowercase());
        }
        let aliases = config.domain_aliases.iter().map(|(k, v)| (k.to_lowercase(), v.to_lowercase())).collect();
        let postmaster = match &config.postmaster {
            Some(p) => Some(Address::parse(p, true).map_err(|e| format!("[mail] postmaster {p:?}: {e}"))?),
            None => None,
        };
        let decoy_hash = password::hash("tidings decoy password").map_err(|e| e.to_string())?;
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let hashing = tokio::sync::Semaphore::new(cpus);
        Ok(Directory { store, domains, aliases, postmaster, decoy_hash, hashing })
    }

    /// The store behind this directory.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// `address` with an alias domain replaced by its target.
    pub fn canonical(&self, address: &Address) -> Address {
        match self.aliases.get(address.domain()) {
            Some(target) => Address::from_parts(address.local_part(), target),
            None => address.clone(),
        }
    }

    /// Whether `domain` is local: configured, an alias, or the domain of some account.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn is_local_domain(&self, domain: &str) -> Result<bool, StoreError> {
        let domain = domain.to_lowercase();
        if self.domains.contains(&domain) {
            return Ok(true);
        }
        self.store.domain_has_accounts(&domain).await
    }

    /// Resolves a forward-path. `<postmaster>` and `postmaster@<local domain>` reach the domain's
    /// own postmaster account if it has one, else the configured `[mail] postmaster` account.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn resolve(&self, path: &Path) -> Result<Resolution, StoreError> {
        let address = match path {
            Path::Mailbox(a) => self.canonical(a),
            Path::Postmaster | Path::Null => return self.postmaster().await,
        };
        if self.store.account(&address).await?.is_some() {
            return Ok(Resolution::Local(address));
        }
        if !self.is_local_domain(address.domain()).await? {
            return Ok(Resolution::NotLocal);
        }
        if address.local_part() == "postmaster" {
            return self.postmaster().await;
        }
        Ok(Resolution::UnknownUser)
    }

    /// The configured `[mail] postmaster` account, if it exists.
    async fn postmaster(&self) -> Result<Resolution, StoreError> {
        Ok(match &self.postmaster {
            Some(p) if self.store.account(p).await?.is_some() => Resolution::Local(p.clone()),
            _ => Resolution::UnknownUser,
        })
    }

    /// The account a login name means: a full address (aliases applied), or a bare local part
    /// when exactly one account has it.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn find_login(&self, user: &str) -> Result<Option<Account>, StoreError> {
        if user.contains('@') {
            let Ok(address) = Address::parse(user, true) else {
                return Ok(None);
            };
            return self.store.account(&self.canonical(&address)).await;
        }
        if user.is_empty() || user.len() > tidings_core::LOCAL_PART_BYTES_MAX {
            return Ok(None);
        }
        let found = self.store.accounts_with_local_part(user).await?;
        match found.as_slice() {
            [only] => self.store.account(only).await,
            _ => Ok(None),
        }
    }

    /// Checks a login name and password; on success returns the account. The argon2 check runs on
    /// a blocking thread, and runs against a decoy hash when the user does not exist.
    ///
    /// # Errors
    /// [`LoginError::Invalid`] for any wrong name or password; [`LoginError::Unavailable`] when
    /// the store cannot be read.
    pub async fn authenticate(&self, user: &str, password: &str) -> Result<Account, LoginError> {
        let account = self.find_login(user).await.map_err(LoginError::Unavailable)?;
        let hash = account.as_ref().map_or_else(|| self.decoy_hash.clone(), |a| a.password_hash.clone());
        let password = password.to_owned();
        let _slot = tokio::time::timeout(HASHING_WAIT, self.hashing.acquire())
            .await
            .map_err(|_| LoginError::Unavailable(StoreError::Overloaded))?
            .map_err(|_| LoginError::Unavailable(StoreError::Closed))?;
        let ok = tokio::task::spawn_blocking(move || password::verify(&password, &hash))
            .await
            .map_err(|e| LoginError::Unavailable(StoreError::Database(e.to_string())))?;
        match account {
            Some(account) if ok => Ok(account),
            _ => Err(LoginError::Invalid),
        }
    }

    /// Creates an account with the standard mailboxes; the password is hashed on a blocking thread.
    ///
    /// # Errors
    /// [`AccountError::Store`] with [`StoreError::AccountExists`] when the address is taken, or a
    /// password or store failure.
    pub async fn create_account(&self, address: &Address, password: &str) -> Result<(), AccountError> {
        let password_hash = self.hash(password).await?;
        let now_ms = tidings_core::date::now_millis();
        let op = Op::CreateAccount {
            address: address.clone(),
            password_hash,
            created_at: now_ms / 1000,
            uidvalidity: tidings_core::uidvalidity_at(now_ms),
        };
        self.store.apply(address, op).await?;
        Ok(())
    }

    /// Replaces an account's password.
    ///
    /// # Errors
    /// [`StoreError::NoSuchAccount`], or a password or store failure.
    pub async fn set_password(&self, address: &Address, password: &str) -> Result<(), AccountError> {
        let password_hash = self.hash(password).await?;
        self.store.apply(address, Op::SetPassword { address: address.clone(), password_hash }).await?;
        Ok(())
    }

    /// Sets (or with `None` removes) the account's recovery address, where password-reset codes
    /// are sent.
    ///
    /// # Errors
    /// [`StoreError::NoSuchAccount`] or a store failure.
    pub async fn set_recovery_address(&self, address: &Address, recovery: Option<&Address>) -> Result<(), StoreError> {
        let op = Op::SetRecoveryAddress { address: address.clone(), recovery: recovery.cloned() };
        self.store.apply(address, op).await?;
        Ok(())
    }

    /// Removes an account and all its mail.
    ///
    /// # Errors
    /// [`StoreError::NoSuchAccount`] or a store failure.
    pub async fn delete_account(&self, address: &Address) -> Result<(), AccountError> {
        self.store.apply(address, Op::DeleteAccount { address: address.clone() }).await?;
        Ok(())
    }

    /// Hashes a new password on a blocking thread, within the argon2 bound.
    async fn hash(&self, password: &str) -> Result<String, AccountError> {
        let _slot = self.hashing.acquire().await.map_err(|_| AccountError::Store(StoreError::Closed))?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || password::hash(&password))
            .await
            .map_err(|e| AccountError::Store(StoreError::Database(e.to_string())))?
            .map_err(AccountError::Password)
    }
}
