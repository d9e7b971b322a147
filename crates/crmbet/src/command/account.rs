//! `crmbet account create`: bootstraps accounts; there is no default password.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{Context, bail};
use crmbet_app::{check_new_password, create_account, generate_password};
use crmbet_core::Config;
use crmbet_core::Role;

use crate::cli::{AccountAction, RoleArg};
use crate::command::open_store;

/// Runs an `account` subcommand.
pub async fn run(config: Config, action: AccountAction) -> anyhow::Result<ExitCode> {
    match action {
        AccountAction::Create {
            username,
            role,
            password_stdin,
        } => create(&config, &username, role_of(role), password_stdin).await,
    }
}

/// Creates the account; prints a generated password once, or reads one line from stdin.
async fn create(
    config: &Config,
    username: &str,
    role: Role,
    password_stdin: bool,
) -> anyhow::Result<ExitCode> {
    let password = if password_stdin {
        read_password_line()?
    } else {
        generate_password()
    };
    check_new_password(&password).context("refusing the password")?;
    let store = open_store(config).await?;
    create_account(&store, username, role, &password, "cli")
        .await
        .with_context(|| format!("creating account {username}"))?;
    println!("created account {username} with role {role}");
    if !password_stdin {
        println!("password: {password}");
        println!("the password is shown only now; keep it in a password manager");
    }
    Ok(ExitCode::SUCCESS)
}

/// The first line of standard input, without its line ending.
fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!("--password-stdin: standard input held no password");
    }
    Ok(password)
}

fn role_of(role: RoleArg) -> Role {
    match role {
        RoleArg::Admin => Role::Admin,
        RoleArg::Analyst => Role::Analyst,
        RoleArg::Marketer => Role::Marketer,
        RoleArg::Service => Role::Service,
    }
}
