//! Who listens on a loopback port, and which processes descend from it: how a GPU process is
//! named after the engine that started it (Ollama's model runners, llama-server's router
//! children, vLLM's engine core). Linux reads the kernel's socket table and /proc; Windows asks
//! the TCP table for the listener's owning pid (`GetExtendedTcpTable`) and a Toolhelp snapshot
//! for parents.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Most processes read for the parent map (a desktop has a few hundred).
const MAX_PROCESSES: usize = 8192;
/// Deepest chain of parents followed (runner → server → shell is three).
const MAX_DEPTH: usize = 8;

/// The pid of the process listening on `address` (TCP), `None` when the system does not say.
pub fn listener_pid(address: SocketAddr) -> Option<u32> {
    imp::listener_pid(address)
}

/// True when `pid` still listens on `address`: a cheap re-check of a pid found before (one
/// process's descriptors instead of every process's).
pub fn listens_on(pid: u32, address: SocketAddr) -> bool {
    imp::listens_on(pid, address)
}

/// The pid listening on `address` when it runs as another user than vramdeck (a squatter on
/// an engine's port). Windows only: on Linux the socket table's uid answers this (see
/// `release::loopback_owner`), here `None`.
pub fn another_users_listener(address: SocketAddr) -> Option<u32> {
    imp::another_users_listener(address)
}

/// Every process's parent, at most [`MAX_PROCESSES`] of them.
pub fn parents() -> HashMap<u32, u32> {
    imp::parents()
}

/// True when `pid` is `root` or descends from it, by `parents`.
pub fn descends_from(pid: u32, root: u32, parents: &HashMap<u32, u32>) -> bool {
    let mut at = pid;
    for _ in 0..=MAX_DEPTH {
        if at == root {
            return true;
        }
        match parents.get(&at) {
            Some(&parent) if parent != at && parent != 0 => at = parent,
            _ => return false,
        }
    }
    false
}

/// The parent pid in a `/proc/<pid>/stat` line: the field after the command in parentheses,
/// which may itself hold spaces and parentheses.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parent_in_stat(stat: &str) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// The socket inode of the listening row for `port` in a /proc/net/tcp{,6} table (state 0A).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn listening_inode(table: &str, port: u16) -> Option<u64> {
    let wanted = format!(":{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (local, state, inode) = (cols.get(1)?, cols.get(3)?, cols.get(9)?);
        (local.ends_with(&wanted) && *state == "0A")
            .then(|| inode.parse().ok())
            .flatten()
    })
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;

    /// Every pid in /proc, at most [`MAX_PROCESSES`] of them.
    fn pids() -> impl Iterator<Item = u32> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flat_map(|entries| entries.flatten())
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .take(MAX_PROCESSES)
    }

    pub fn listener_pid(address: SocketAddr) -> Option<u32> {
        let inode = listening_socket(address)?;
        pids().find(|pid| holds_socket(*pid, inode))
    }

    /// The inode of the socket listening on `address`'s port.
    fn listening_socket(address: SocketAddr) -> Option<u64> {
        ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|t| {
            let text = std::fs::read_to_string(t).ok()?;
            listening_inode(&text, address.port())
        })
    }

    /// True when one of `pid`'s descriptors is the socket `inode`. Another user's descriptors
    /// are not ours to read: false, as the kernel wants.
    fn holds_socket(pid: u32, inode: u64) -> bool {
        let wanted = format!("socket:[{inode}]");
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str())
            })
        })
    }

    pub fn listens_on(pid: u32, address: SocketAddr) -> bool {
        listening_socket(address).is_some_and(|inode| holds_socket(pid, inode))
    }

    pub fn another_users_listener(_address: SocketAddr) -> Option<u32> {
        None
    }

    pub fn parents() -> HashMap<u32, u32> {
        pids()
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                Some((pid, parent_in_stat(&stat)?))
            })
            .collect()
    }
}

#[cfg(windows)]
mod imp {
    use super::*;
    use windows_sys::Win32::Foundation::{CloseHandle, INVALID_HANDLE_VALUE, NO_ERROR};
    use windows_sys::Win32::NetworkManagement::IpHelper::{
        GetExtendedTcpTable, MIB_TCP6ROW_OWNER_PID, MIB_TCPROW_OWNER_PID,
        TCP_TABLE_OWNER_PID_LISTENER,
    };
    use windows_sys::Win32::Networking::WinSock::{AF_INET, AF_INET6};
    use windows_sys::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW,
        TH32CS_SNAPPROCESS,
    };

    /// The listener table of one address family, as the bytes Windows fills.
    fn table(family: u32) -> Option<Vec<u8>> {
        let mut size = 0u32;
        // SAFETY: a null buffer with size 0 asks only for the size needed.
        unsafe {
            GetExtendedTcpTable(
                std::ptr::null_mut(),
                &mut size,
                0,
                family,
                TCP_TABLE_OWNER_PID_LISTENER,
                0,
            )
        };
        if size == 0 || size > 16 << 20 {
            return None;
        }
        let mut buffer = vec![0u8; size as usize];
        // SAFETY: the buffer holds `size` bytes, as Windows asked.
        let result = unsafe {
            GetExtendedTcpTable(
                buffer.as_mut_ptr().cast(),
                &mut size,
                0,
                family,
                TCP_TABLE_OWNER_PID_LISTENER,
                0,
            )
        };
        (result == NO_ERROR).then_some(buffer)
    }

    /// The rows after the table's leading count, each `T`, bounded by the buffer.
    fn rows<T: Copy>(buffer: &[u8]) -> Vec<T> {
        if buffer.len() < 4 {
            return Vec::new();
        }
        let count = u32::from_ne_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as usize;
        // The rows start at the table's alignment after the count.
        let start = std::mem::align_of::<T>().max(4);
        let fit = buffer.len().saturating_sub(start) / std::mem::size_of::<T>();
        (0..count.min(fit))
            .map(|i| {
                let at = start + i * std::mem::size_of::<T>();
                // SAFETY: `at + size_of::<T>()` lies within the buffer; read unaligned.
                unsafe { std::ptr::read_unaligned(buffer.as_ptr().add(at).cast::<T>()) }
            })
            .collect()
    }

    pub fn listener_pid(address: SocketAddr) -> Option<u32> {
        let port_of = |net_order: u32| u16::from_be((net_order & 0xFFFF) as u16);
        let pid = match address {
            SocketAddr::V4(_) => rows::<MIB_TCPROW_OWNER_PID>(&table(AF_INET as u32)?)
                .into_iter()
                .find(|r| port_of(r.dwLocalPort) == address.port())
                .map(|r| r.dwOwningPid),
            SocketAddr::V6(_) => rows::<MIB_TCP6ROW_OWNER_PID>(&table(AF_INET6 as u32)?)
                .into_iter()
                .find(|r| port_of(r.dwLocalPort) == address.port())
                .map(|r| r.dwOwningPid),
        };
        // Wine (and the System process) report pid 0: that names nobody.
        pid.filter(|p| *p != 0)
    }

    pub fn listens_on(pid: u32, address: SocketAddr) -> bool {
        listener_pid(address) == Some(pid)
    }

    /// The user SID of a process's token, as bytes; `None` when it cannot be read.
    fn token_user(process: windows_sys::Win32::Foundation::HANDLE) -> Option<Vec<u8>> {
        use windows_sys::Win32::Security::{
            GetLengthSid, GetTokenInformation, TOKEN_QUERY, TOKEN_USER, TokenUser,
        };
        use windows_sys::Win32::System::Threading::OpenProcessToken;
        let mut token = std::ptr::null_mut();
        // SAFETY: `process` is a valid handle; the token is closed below.
        if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
            return None;
        }
        let mut buffer = vec![0u8; 256];
        let mut size = 0u32;
        // SAFETY: the buffer holds 256 bytes, enough for any TOKEN_USER.
        let ok = unsafe {
            GetTokenInformation(
                token,
                TokenUser,
                buffer.as_mut_ptr().cast(),
                buffer.len() as u32,
                &mut size,
            )
        } != 0;
        // SAFETY: ours to close.
        unsafe { CloseHandle(token) };
        if !ok {
            return None;
        }
        // SAFETY: Windows filled a TOKEN_USER at the buffer's start; its SID points inside it.
        let sid = unsafe { std::ptr::read_unaligned(buffer.as_ptr().cast::<TOKEN_USER>()) }
            .User
            .Sid;
        // SAFETY: a valid SID, as returned.
        let length = unsafe { GetLengthSid(sid) } as usize;
        // SAFETY: `length` bytes at `sid` are the SID.
        Some(unsafe { std::slice::from_raw_parts(sid.cast::<u8>(), length) }.to_vec())
    }

    pub fn another_users_listener(address: SocketAddr) -> Option<u32> {
        use windows_sys::Win32::System::Threading::{
            GetCurrentProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
        };
        let pid = listener_pid(address)?;
        // SAFETY: the pseudo-handle of this process needs no closing.
        let ours = token_user(unsafe { GetCurrentProcess() })?;
        // SAFETY: a query-only handle, closed below.
        let handle = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        if handle.is_null() {
            // A process we may not even query is not ours.
            return Some(pid);
        }
        let theirs = token_user(handle);
        // SAFETY: ours to close.
        unsafe { CloseHandle(handle) };
        (theirs.as_deref() != Some(ours.as_slice())).then_some(pid)
    }

    pub fn parents() -> HashMap<u32, u32> {
        let mut map = HashMap::new();
        // SAFETY: a process snapshot, closed below.
        let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0) };
        if snapshot == INVALID_HANDLE_VALUE {
            return map;
        }
        // SAFETY: PROCESSENTRY32W is plain data; dwSize is set as the API requires.
        let mut entry: PROCESSENTRY32W = unsafe { std::mem::zeroed() };
        entry.dwSize = std::mem::size_of::<PROCESSENTRY32W>() as u32;
        // SAFETY: the snapshot and entry are valid for these calls.
        let mut more = unsafe { Process32FirstW(snapshot, &mut entry) } != 0;
        while more && map.len() < MAX_PROCESSES {
            map.insert(entry.th32ProcessID, entry.th32ParentProcessID);
            // SAFETY: as above.
            more = unsafe { Process32NextW(snapshot, &mut entry) } != 0;
        }
        // SAFETY: the snapshot handle is ours.
        unsafe { CloseHandle(snapshot) };
        map
    }
}

#[cfg(not(any(target_os = "linux", windows)))]
mod imp {
    use super::*;

    pub fn listener_pid(_address: SocketAddr) -> Option<u32> {
        None
    }

    pub fn listens_on(_pid: u32, _address: SocketAddr) -> bool {
        false
    }

    pub fn another_users_listener(_address: SocketAddr) -> Option<u32> {
        None
    }

    pub fn parents() -> HashMap<u32, u32> {
        HashMap::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_with_spaces_and_parentheses_in_the_name_gives_its_parent() {
        assert_eq!(
            parent_in_stat("4242 (llama-server) S 4100 4242 1 0"),
            Some(4100)
        );
        assert_eq!(parent_in_stat("77 (a (b) c) R 1 77 77 0"), Some(1));
        assert_eq!(parent_in_stat("garbage"), None);
    }

    #[test]
    fn the_listening_row_of_a_port_is_found_and_a_connected_one_is_not() {
        // /proc/net/tcp as Linux prints it: 127.0.0.1:8080 listening, then a connection to it.
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 55501 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 55502 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(listening_inode(table, 8080), Some(55501));
        assert_eq!(listening_inode(table, 40000), None);
    }

    #[test]
    fn descent_follows_parents_and_stops_at_loops_and_depth() {
        let parents: HashMap<u32, u32> = [(30, 20), (20, 10), (10, 1), (5, 5)].into();
        assert!(descends_from(30, 10, &parents));
        assert!(descends_from(10, 10, &parents));
        assert!(!descends_from(30, 99, &parents));
        assert!(!descends_from(5, 1, &parents));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn our_own_listener_is_found_by_its_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        assert_eq!(listener_pid(address), Some(std::process::id()));
        assert!(listens_on(std::process::id(), address));
        assert!(!listens_on(1, address));
        assert!(descends_from(
            std::process::id(),
            std::process::id(),
            &parents()
        ));
    }
}
