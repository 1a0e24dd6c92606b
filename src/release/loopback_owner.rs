//! Who owns the server end of a loopback TCP connection, as Linux tells in /proc/net/tcp{,6}.
//!
//! "On loopback" does not mean "ComfyUI": while ComfyUI is down, any local user can listen on
//! its port. The kernel's socket table names the uid of every socket, so after connecting,
//! vramdeck looks up the server's end of its own connection and refuses one owned by another
//! user (root excepted: it could read everything anyway, and Docker's port proxy runs as root).

use std::net::{IpAddr, SocketAddr};

/// The uid owning the socket at `server` whose peer is `client` (our end), or `None` when the
/// system does not say (not Linux, /proc hidden, the entry already gone).
pub fn server_uid(client: SocketAddr, server: SocketAddr) -> Option<u32> {
    let wanted = (encodings(server), encodings(client));
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            find_uid(&text, &wanted.0, &wanted.1)
        })
}

/// The uid column of the row whose local address is one of `local` and remote one of `remote`.
fn find_uid(table: &str, local: &[String], remote: &[String]) -> Option<u32> {
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (l, r, uid) = (cols.get(1)?, cols.get(2)?, cols.get(7)?);
        let matches = |set: &[String], cell: &str| set.iter().any(|s| s.eq_ignore_ascii_case(cell));
        (matches(local, l) && matches(remote, r))
            .then(|| uid.parse().ok())
            .flatten()
    })
}

/// How the kernel prints `addr` in /proc/net/tcp (IPv4) and /proc/net/tcp6 (IPv6, and IPv4
/// accepted by a dual-stack socket as ::ffff:a.b.c.d): each 32-bit word in host byte order.
fn encodings(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let words = |bytes: &[u8]| -> String {
        bytes
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .collect()
    };
    match addr.ip() {
        IpAddr::V4(v4) => vec![
            format!("{}:{port:04X}", words(&v4.octets())),
            format!("{}:{port:04X}", words(&v4.to_ipv6_mapped().octets())),
        ],
        IpAddr::V6(v6) => vec![format!("{}:{port:04X}", words(&v6.octets()))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_encoded_as_the_kernel_prints_them() {
        // Seen in /proc/net/tcp on x86-64: 127.0.0.1:8188 is "0100007F:1FFC".
        let v4: SocketAddr = "127.0.0.1:8188".parse().unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(encodings(v4)[0], "0100007F:1FFC");
            assert_eq!(encodings(v4)[1], "0000000000000000FFFF00000100007F:1FFC");
            let v6: SocketAddr = "[::1]:8000".parse().unwrap();
            assert_eq!(encodings(v6), vec!["00000000000000000000000001000000:1F40"]);
        }
    }

    #[test]
    fn the_row_of_the_connection_gives_its_uid() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1FFC 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 111 1 0 100 0 0 10 0\n\
   1: 0100007F:1FFC 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000  1001        0 222 1 0 20 4 30 10 -1\n\
   2: 0100007F:A1B2 0100007F:1FFC 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0 20 4 30 10 -1\n";
        let server: SocketAddr = "127.0.0.1:8188".parse().unwrap();
        let client: SocketAddr = "127.0.0.1:41394".parse().unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(
                find_uid(table, &encodings(server), &encodings(client)),
                Some(1001)
            );
            assert_eq!(
                find_uid(table, &encodings(client), &encodings(server)),
                Some(0)
            );
        }
        assert_eq!(find_uid("garbage\n1 2", &encodings(server), &[]), None);
    }

    #[test]
    fn a_real_loopback_connection_is_found_and_owned_by_us() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let stream = std::net::TcpStream::connect(server).unwrap();
        let (_accepted, _) = listener.accept().unwrap();
        let client = stream.local_addr().unwrap();
        if std::path::Path::new("/proc/net/tcp").exists() {
            assert_eq!(
                server_uid(client, server),
                Some(crate::release::discovery::current_uid())
            );
        }
    }
}
