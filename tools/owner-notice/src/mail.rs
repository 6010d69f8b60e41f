//! RFC 5322 messages built with lettre's message builder: addresses parsed (a newline or any other
//! character an address may not hold is refused, never written), display names and the subject
//! encoded as RFC 2047 words where not ASCII, the UTF-8 body transfer-encoded (7bit,
//! quoted-printable or base64, whichever fits), Date, Message-ID and MIME-Version set.

use common::{Error, Result};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, SinglePart};
use lettre::{Address, Message};

/// The sender side of every message.
pub struct Envelope {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub date: jiff::Timestamp,
}

/// `Name <address>` or a bare address, as --from and --reply-to take it.
pub fn parse_mailbox(option: &str, text: &str) -> Result<Mailbox> {
    text.parse::<Mailbox>().map_err(|e| {
        Error::usage(format!(
            "{option} {text:?}: not an e-mail address (Name <user@example.com>): {e}"
        ))
    })
}

/// A display name fit for a header: control characters (line breaks above all) as spaces,
/// runs of spaces as one. lettre encodes what is not ASCII.
fn header_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// One message to `address` (named `display_name`) with `subject` and the plain-text `body`.
/// `key` makes its Message-ID unique (the owner's kind and principal).
pub fn message(
    envelope: &Envelope,
    to: (&str, &str),
    subject: &str,
    body: String,
    key: &[&str],
) -> Result<Vec<u8>> {
    let (display_name, address) = to;
    let address: Address = address
        .parse()
        .map_err(|e| Error::data(format!("{address:?}: not an e-mail address: {e}")))?;
    let name = header_text(display_name);
    let to = Mailbox::new((!name.is_empty()).then_some(name), address);
    let mut builder = Message::builder()
        .from(envelope.from.clone())
        .to(to)
        .subject(header_text(subject))
        .date(std::time::SystemTime::from(envelope.date))
        .message_id(Some(message_id(envelope, key, &body)));
    if let Some(reply_to) = &envelope.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    let part = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(body);
    let message = builder
        .singlepart(part)
        .map_err(|e| Error::data(format!("cannot build the message: {e}")))?;
    Ok(message.formatted())
}

/// `<owner-notice.DATE.HASH@DOMAIN>` (RFC 5322 section 3.6.4): the sender's domain, the date and
/// a hash of the recipient and body, so that every message has its own and a rerun of the same
/// notices at the same --date gives the same.
fn message_id(envelope: &Envelope, key: &[&str], body: &str) -> String {
    let date = envelope.date.strftime("%Y%m%dT%H%M%SZ").to_string();
    let mut parts: Vec<&str> = key.to_vec();
    parts.push(body);
    let hash = common::names::stable_hash(&parts);
    format!(
        "<owner-notice.{date}.{hash}@{}>",
        envelope.from.email.domain()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_is_one_line() {
        assert_eq!(header_text("Zoë\r\nBcc: x@y"), "Zoë Bcc: x@y");
    }

    #[test]
    fn mailboxes_refuse_line_breaks() {
        assert!(parse_mailbox("--from", "Ops <ops@example.com>").is_ok());
        let err = parse_mailbox("--from", "ops@example.com\r\nBcc: x@example.com").unwrap_err();
        assert_eq!(err.code, common::ExitCode::Usage);
    }
}
