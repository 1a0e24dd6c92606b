//! The loopback transport's handshake, vramdeck's side (the agent's side and the reasoning are
//! in `vramdeck_agent/_auth.py`; the messages in PROTOCOL.md).
//!
//! Anyone on the machine can listen on a port an agent has left, so the agent proves first
//! that it holds the secret from its endpoint file; only then does vramdeck send its own proof.
//! The secret itself never crosses the connection, and proofs are checked in constant time.

use ring::hmac;
use serde::Deserialize;

/// Prefix of the agent's proof: HMAC(secret, AGENT_LABEL ‖ client nonce ‖ agent nonce).
const AGENT_LABEL: &[u8] = b"vramdeck agent proof\n";
/// Prefix of vramdeck's proof: HMAC(secret, CLIENT_LABEL ‖ agent nonce ‖ client nonce).
const CLIENT_LABEL: &[u8] = b"vramdeck client proof\n";

/// An agent's 32-byte secret, read from its endpoint file. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// From 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Secret(bytes))
    }

    fn key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.0)
    }
}

/// One side's fresh random nonce.
pub type Nonce = [u8; 32];

/// A fresh nonce from the OS's random source.
pub fn new_nonce() -> std::io::Result<Nonce> {
    let mut nonce = [0u8; 32];
    crate::platform::files::fill_random(&mut nonce)?;
    Ok(nonce)
}

/// The first line: vramdeck's nonce.
pub fn opening(client_nonce: &Nonce) -> Vec<u8> {
    crate::release::protocol::encode_line(&serde_json::json!({
        "v": super::protocol::PROTOCOL_VERSION, "id": 0, "op": "auth",
        "nonce": hex::encode(client_nonce),
    }))
}

/// The third line: vramdeck's proof, sent only after the agent's checked out.
pub fn proof_line(secret: &Secret, client_nonce: &Nonce, agent_nonce: &Nonce) -> Vec<u8> {
    let tag = hmac::sign(
        &secret.key(),
        &[CLIENT_LABEL, agent_nonce, client_nonce].concat(),
    );
    crate::release::protocol::encode_line(&serde_json::json!({
        "v": super::protocol::PROTOCOL_VERSION, "id": 0, "op": "auth",
        "proof": hex::encode(tag.as_ref()),
    }))
}

#[derive(Deserialize)]
struct AuthReply {
    ok: bool,
    /// Whoever listens on the port wrote it (a squatter, after the agent exited): cleaned as
    /// it is read, like every other field an agent sends.
    #[serde(default, deserialize_with = "crate::text::safe_opt_string")]
    error: Option<String>,
    #[serde(default)]
    auth: Option<AuthBody>,
}

#[derive(Deserialize)]
struct AuthBody {
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    proof: Option<String>,
    #[serde(default)]
    accepted: Option<bool>,
}

/// What went wrong in a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The peer does not hold the secret (a squatter on the port, or a stale file).
    Unproven,
    /// The peer answered, but not with the handshake (the sentence says how).
    Malformed(String),
    /// The agent refused us (its sentence).
    Refused(String),
}

fn parse(reply: &[u8]) -> Result<AuthBody, Failure> {
    let reply: AuthReply = serde_json::from_slice(reply)
        .map_err(|e| Failure::Malformed(format!("not a handshake reply ({e})")))?;
    if !reply.ok {
        return Err(Failure::Refused(
            reply.error.unwrap_or_else(|| "no reason given".into()),
        ));
    }
    reply
        .auth
        .ok_or_else(|| Failure::Malformed("handshake reply without auth".into()))
}

/// Checks the agent's answer to the opening: returns its nonce when its proof is right.
pub fn check_agent(reply: &[u8], secret: &Secret, client_nonce: &Nonce) -> Result<Nonce, Failure> {
    let body = parse(reply)?;
    let mut agent_nonce = [0u8; 32];
    let nonce_ok = body
        .nonce
        .is_some_and(|n| hex::decode_to_slice(n, &mut agent_nonce).is_ok());
    let mut proof = [0u8; 32];
    let proof_ok = body
        .proof
        .is_some_and(|p| hex::decode_to_slice(p, &mut proof).is_ok());
    if !nonce_ok || !proof_ok {
        return Err(Failure::Malformed(
            "the handshake's nonce and proof must be 64 hex digits".into(),
        ));
    }
    let message = [AGENT_LABEL, client_nonce, &agent_nonce].concat();
    hmac::verify(&secret.key(), &message, &proof).map_err(|_| Failure::Unproven)?;
    Ok(agent_nonce)
}

/// Checks the agent's last answer: it accepted our proof.
pub fn check_accepted(reply: &[u8]) -> Result<(), Failure> {
    match parse(reply)?.accepted {
        Some(true) => Ok(()),
        _ => Err(Failure::Malformed("handshake not accepted".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_from_the_port_reaches_the_terminal_with_its_escapes_made_visible() {
        let hostile =
            "{\"ok\":false,\"error\":\"\\u001b]0;pwned\\u0007\\u001b[2J\\u009b31m\\u202eevil\"}";
        let Err(Failure::Refused(said)) = parse(hostile.as_bytes()) else {
            panic!("not a refusal")
        };
        assert!(
            !said.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{said:?}"
        );
        assert!(said.contains("\\u{1b}]0;pwned"), "{said}");
    }

    fn agent_reply(secret: &Secret, client: &Nonce, agent: &Nonce) -> Vec<u8> {
        let tag = hmac::sign(&secret.key(), &[AGENT_LABEL, client, agent].concat());
        crate::release::protocol::encode_line(&serde_json::json!({"v":1,"id":0,"ok":true,
            "auth":{"nonce":hex::encode(agent),"proof":hex::encode(tag.as_ref())}}))
    }

    #[test]
    fn a_right_proof_passes_and_any_change_fails() {
        let secret = Secret([7; 32]);
        let client = [1u8; 32];
        let agent = [2u8; 32];
        let reply = agent_reply(&secret, &client, &agent);
        assert_eq!(check_agent(&reply, &secret, &client), Ok(agent));
        // Another secret, another client nonce (a replayed answer), a flipped digit.
        assert_eq!(
            check_agent(&reply, &Secret([8; 32]), &client),
            Err(Failure::Unproven)
        );
        assert_eq!(
            check_agent(&reply, &secret, &[9u8; 32]),
            Err(Failure::Unproven)
        );
        let text = String::from_utf8(reply).unwrap();
        let at = text.find("\"proof\":\"").unwrap() + 9;
        let mut flipped = text.clone().into_bytes();
        flipped[at] = if flipped[at] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            check_agent(&flipped, &secret, &client),
            Err(Failure::Unproven)
        );
    }

    #[test]
    fn the_two_proofs_never_coincide() {
        // With the nonces swapped the messages would be equal but for the labels.
        let secret = Secret([3; 32]);
        let n = [4u8; 32];
        let ours = proof_line(&secret, &n, &n);
        let theirs = agent_reply(&secret, &n, &n);
        let tag = |l: &[u8]| {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap();
            v.pointer("/proof")
                .or(v.pointer("/auth/proof"))
                .unwrap()
                .clone()
        };
        assert_ne!(tag(&ours), tag(&theirs));
        assert!(
            !String::from_utf8(ours)
                .unwrap()
                .contains(&hex::encode([3u8; 32]))
        );
    }

    #[test]
    fn refusals_garbage_and_short_values_are_named() {
        let secret = Secret([0; 32]);
        let n = [0u8; 32];
        assert_eq!(
            check_agent(br#"{"ok":false,"error":"authenticate first"}"#, &secret, &n),
            Err(Failure::Refused("authenticate first".into()))
        );
        assert!(matches!(
            check_agent(b"HTTP/1.1 400 Bad Request", &secret, &n),
            Err(Failure::Malformed(_))
        ));
        assert!(matches!(
            check_agent(
                br#"{"ok":true,"auth":{"nonce":"ab","proof":"cd"}}"#,
                &secret,
                &n
            ),
            Err(Failure::Malformed(_))
        ));
        assert!(check_accepted(br#"{"ok":true,"auth":{"accepted":true}}"#).is_ok());
        assert!(check_accepted(br#"{"ok":true,"auth":{}}"#).is_err());
        assert_eq!(format!("{:?}", Secret([5; 32])), "Secret(..)");
        assert!(Secret::from_hex("zz").is_none());
    }
}
