//! `kintsugi init` and `kintsugi join`: make a space, or enter one with a code.
//!
//! `join` takes the code from stdin when it is not an argument, so it stays out of argv.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;

use anyhow::bail;
use kintsugi_core::read_ca_cert;
use kintsugi_core::{Device, Enrolment, InviteCode, system_clock};
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::EnrolArgs;
use crate::output::Output;

pub async fn init(home: &Path, args: EnrolArgs, out: Output) -> anyhow::Result<()> {
    let device_name = device_name(&args);
    let Some(server) = args.server.as_deref() else {
        bail!(
            "give the sync server: `kintsugi init --server URL --name NAME` (or set KINTSUGI_SERVER)"
        );
    };
    let device = Device::init(enrolment(home, &args, server, &device_name)?).await?;
    print_identity(
        &device,
        out,
        "created a new space; invite your partner with `kintsugi invite`, and print your \
         recovery kit with `kintsugi recovery show` (shown once: keep it offline)",
    )
}

pub async fn join(
    home: &Path,
    args: EnrolArgs,
    code: Option<String>,
    out: Output,
) -> anyhow::Result<()> {
    let code = match code {
        Some(code) => Zeroizing::new(code),
        None => read_code(
            &mut std::io::stdin().lock(),
            std::io::stdin().is_terminal(),
            INVITE,
        )?,
    };
    let code = code.trim();
    if code.is_empty() {
        bail!(NO_CODE);
    }
    let device_name = device_name(&args);
    // The code carries its server; --server overrides it (a server that moved, say).
    let from_code = InviteCode::parse(code)?.server_url;
    let server = args.server.as_deref().unwrap_or(&from_code);
    if server.is_empty() {
        bail!("this invite code does not say which server to use; give it with --server URL");
    }
    let device = Device::join(enrolment(home, &args, server, &device_name)?, code).await?;
    print_identity(
        &device,
        out,
        "joined the space; run `kintsugi sync` to receive what is there (a partner: print your \
         recovery kit with `kintsugi recovery show` and keep it offline)",
    )
}

/// What to do when no code came: on the command line or on stdin.
const NO_CODE: &str = "no invite code given: paste it when asked, or pipe it in \
     (`kintsugi join --name NAME < code.txt`); `kintsugi invite` on the inviting \
     device makes one";

/// The longest line taken as a code: a code is about 220 characters.
const MAX_CODE_LINE: u64 = 4096;

/// What a code read from stdin is: its prompt and its name in errors.
pub(super) struct CodeKind {
    pub prompt: &'static str,
    pub name: &'static str,
}

const INVITE: CodeKind = CodeKind {
    prompt: "Invite code (from `kintsugi invite` on the inviting device): ",
    name: "invite code",
};

/// One line of `input` (stdin), after a prompt on stderr when it is a terminal. The code stays
/// out of argv, `ps` and shell history this way.
pub(super) fn read_code(
    input: &mut impl BufRead,
    terminal: bool,
    kind: CodeKind,
) -> anyhow::Result<Zeroizing<String>> {
    let name = kind.name;
    if terminal {
        eprint!("{}", kind.prompt);
        let _ = std::io::stderr().flush();
    }
    let mut line = Zeroizing::new(String::new());
    let read = input
        .take(MAX_CODE_LINE)
        .read_line(&mut line)
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::InvalidData => {
                anyhow::anyhow!("stdin does not hold text; give the {name} as one line of text")
            }
            _ => anyhow::anyhow!("cannot read the {name} from stdin: {error}"),
        })?;
    if terminal && read == 0 {
        eprintln!();
    }
    if read as u64 == MAX_CODE_LINE && !line.ends_with('\n') {
        bail!(
            "the first line of stdin is over {MAX_CODE_LINE} bytes, far longer than any {name}; \
             give only the code, on one line"
        );
    }
    Ok(line)
}

fn enrolment<'a>(
    home: &'a Path,
    args: &'a EnrolArgs,
    server_url: &'a str,
    device_name: &'a str,
) -> anyhow::Result<Enrolment<'a>> {
    Ok(Enrolment {
        dir: home,
        server_url,
        member_name: &args.name,
        device_name,
        ca_cert_pem: args.ca_cert.as_deref().map(read_ca_cert).transpose()?,
        clock: system_clock(),
    })
}

pub(super) fn print_identity(device: &Device, out: Output, next: &str) -> anyhow::Result<()> {
    let id = device.identity();
    let value = json!({
        "space": id.space.to_string(),
        "member": id.member.to_string(),
        "device": id.device.to_string(),
        "name": id.member_name,
        "device_name": id.device_name,
    });
    out.print(&value, || {
        format!(
            "{} on {} ({}): {next}",
            id.member_name, id.device_name, id.device
        )
    })
}

/// `--device-name`, else the host name, else "terminal".
fn device_name(args: &EnrolArgs) -> String {
    device_name_or_host(args.device_name.clone())
}

/// `name`, else the host name, else "terminal".
pub(super) fn device_name_or_host(name: Option<String>) -> String {
    name.or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "terminal".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<String, String> {
        read_code(&mut &bytes[..], false, INVITE)
            .map(|line| line.trim().to_owned())
            .map_err(|error| error.to_string())
    }

    #[test]
    fn the_code_is_the_first_line_of_stdin() {
        assert_eq!(read(b"  KS1ABC \nrest\n"), Ok("KS1ABC".to_owned()));
        assert_eq!(
            read(b"KS1ABC"),
            Ok("KS1ABC".to_owned()),
            "no newline at the end"
        );
        assert_eq!(read(b""), Ok(String::new()), "join says what to do then");
        let long = read(&[b'A'; 5000]).expect_err("too long");
        assert!(
            long.starts_with("the first line of stdin is over 4096 bytes"),
            "{long}"
        );
        let binary = read(b"\xff\xfe\n").expect_err("not text");
        assert!(binary.starts_with("stdin does not hold text"), "{binary}");
    }
}
