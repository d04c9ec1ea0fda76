//! The nodes' connections (`rl::mesh`): mutual authentication with the run's shared secret,
//! then length-prefixed frames, every read and write bounded by the run's timeout.
//!
//! **Authentication** (before anything else is read from the peer): node 0 sends a magic
//! string and a random nonce; the joining node answers with its own nonce and
//! HMAC-SHA256(secret, "join" ‖ both nonces); node 0 checks it and proves it knows the secret
//! too (HMAC over "host" ‖ both nonces), so neither side talks to a stranger. The nonces make
//! an overheard exchange useless to replay. The stream itself is not encrypted: on a network
//! others can read, run the nodes over a VPN (WireGuard) or SSH tunnels.
//!
//! **Frames**: a tag byte, a little-endian u64 length, the payload. A reader says how long a
//! payload it accepts before reading it, so a peer cannot make this process allocate more.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// What the first bytes of node 0's side say (protocol version 1).
pub const MAGIC: &[u8; 12] = b"mgrpo-node/1";
const NONCE: usize = 32;
const MAC: usize = 32;

/// A frame's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// A joining node's description of itself (JSON).
    Hello = 1,
    /// Node 0: every node joined and agrees; training starts.
    Welcome = 2,
    /// A buffer of an all-reduce.
    Data = 3,
    /// The run is over: the reason (UTF-8), to print.
    Abort = 4,
    /// Node 0 is alive, still waiting for another node's part of a sum (no payload).
    Wait = 5,
}

impl Tag {
    fn from_byte(b: u8) -> Option<Tag> {
        Some(match b {
            1 => Tag::Hello,
            2 => Tag::Welcome,
            3 => Tag::Data,
            4 => Tag::Abort,
            5 => Tag::Wait,
            _ => return None,
        })
    }
}

/// How an error that is the other side's `Abort` begins.
pub const STOPPED: &str = "stopped the run: ";

/// Why a connection failed, in words for the user.
pub type WireError = String;

fn io_error(e: std::io::Error, timeout: Duration) -> WireError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            format!("no answer within {} s", timeout.as_secs_f64())
        }
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => {
            "closed the connection (it stopped, or was killed)".to_string()
        }
        _ => e.to_string(),
    }
}

/// One authenticated connection to another node.
pub struct Link {
    stream: TcpStream,
    timeout: Duration,
}

fn mac(secret: &[u8], label: &[u8], a: &[u8], b: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    m.update(label);
    m.update(a);
    m.update(b);
    m
}

fn nonce() -> [u8; NONCE] {
    let mut n = [0u8; NONCE];
    rand::rng().fill_bytes(&mut n);
    n
}

impl Link {
    /// `stream` with every read and write bounded by `timeout` (of no progress).
    fn new(stream: TcpStream, timeout: Duration) -> Result<Self, WireError> {
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut link = Self { stream, timeout };
        link.set_timeout(timeout)?;
        Ok(link)
    }

    /// Node 0's side of the handshake on an accepted connection, within `timeout`.
    pub fn accept(stream: TcpStream, secret: &[u8], timeout: Duration) -> Result<Self, WireError> {
        let mut link = Self::new(stream, timeout)?;
        let ours = nonce();
        link.write_raw(&[&MAGIC[..], &ours].concat())?;
        let mut answer = [0u8; NONCE + MAC];
        link.read_raw(&mut answer)?;
        let (theirs, proof) = answer.split_at(NONCE);
        mac(secret, b"join", &ours, theirs)
            .verify_slice(proof)
            .map_err(|_| "failed authentication (not a node of this run: another secret?)")?;
        let back = mac(secret, b"host", &ours, theirs).finalize().into_bytes();
        link.write_raw(&back)?;
        Ok(link)
    }

    /// A joining node's side of the handshake with node 0.
    pub fn connect(stream: TcpStream, secret: &[u8], timeout: Duration) -> Result<Self, WireError> {
        let mut link = Self::new(stream, timeout)?;
        let mut head = [0u8; MAGIC.len() + NONCE];
        link.read_raw(&mut head)?;
        let (magic, host) = head.split_at(MAGIC.len());
        if magic != MAGIC {
            return Err("is not node 0 of an mgrpo run (another program answered)".into());
        }
        let ours = nonce();
        let proof = mac(secret, b"join", host, &ours).finalize().into_bytes();
        link.write_raw(&[&ours[..], &proof].concat())?;
        let mut back = [0u8; MAC];
        link.read_raw(&mut back).map_err(|e| {
            format!("refused this node during authentication ({e}): do both have the same secret?")
        })?;
        mac(secret, b"host", host, &ours)
            .verify_slice(&back)
            .map_err(|_| "failed authentication (it does not know this run's secret)")?;
        Ok(link)
    }

    /// Bound every later read and write by `timeout` instead.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), WireError> {
        let t = Some(timeout.max(Duration::from_millis(1)));
        self.stream
            .set_read_timeout(t)
            .and_then(|_| self.stream.set_write_timeout(t))
            .map_err(|e| e.to_string())?;
        self.timeout = timeout;
        Ok(())
    }

    fn read_raw(&mut self, buf: &mut [u8]) -> Result<(), WireError> {
        self.stream
            .read_exact(buf)
            .map_err(|e| io_error(e, self.timeout))
    }

    fn write_raw(&mut self, buf: &[u8]) -> Result<(), WireError> {
        self.stream
            .write_all(buf)
            .map_err(|e| io_error(e, self.timeout))
    }

    /// Send one frame.
    pub fn send(&mut self, tag: Tag, payload: &[u8]) -> Result<(), WireError> {
        let mut head = [0u8; 9];
        head[0] = tag as u8;
        head[1..].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        self.write_raw(&head)?;
        self.write_raw(payload)
    }

    /// The next frame's tag and length (refused above `max`, an `Abort` above 64 KiB).
    fn head(&mut self, max: usize) -> Result<(Tag, usize), WireError> {
        let mut head = [0u8; 9];
        self.read_raw(&mut head)?;
        let tag = Tag::from_byte(head[0]).ok_or_else(|| format!("sent frame kind {}", head[0]))?;
        let len = u64::from_le_bytes(head[1..].try_into().unwrap_or_default());
        let cap = if tag == Tag::Abort { 1 << 16 } else { max };
        if len > cap as u64 {
            return Err(format!(
                "sent a {tag:?} frame of {len} bytes (at most {cap})"
            ));
        }
        Ok((tag, len as usize))
    }

    /// Receive one frame of at most `max` bytes.
    pub fn recv(&mut self, max: usize) -> Result<(Tag, Vec<u8>), WireError> {
        let (tag, len) = self.head(max)?;
        let mut payload = vec![0u8; len];
        self.read_raw(&mut payload)?;
        Ok((tag, payload))
    }

    /// Receive a `Data` frame of exactly `out.len()` bytes into `out` (past any `Wait`); the
    /// peer's `Abort` becomes its reason, starting with [`STOPPED`].
    pub fn recv_data(&mut self, out: &mut [u8]) -> Result<(), WireError> {
        let (tag, len) = loop {
            match self.head(out.len())? {
                (Tag::Wait, 0) => continue,
                other => break other,
            }
        };
        match tag {
            Tag::Data if len == out.len() => self.read_raw(out),
            Tag::Abort => {
                let mut why = vec![0u8; len];
                self.read_raw(&mut why)?;
                Err(format!("{STOPPED}{}", String::from_utf8_lossy(&why)))
            }
            _ => Err(format!(
                "sent a {tag:?} frame of {len} bytes where {} bytes of data were due (the \
                 nodes are out of step)",
                out.len()
            )),
        }
    }

    /// Tell the peer why the run ends (best effort: it may be gone already), and make sure
    /// it can read it: closing a socket with unread data sends a reset, which discards what
    /// the peer has not read yet. So the write side is shut and what the peer still sends is
    /// read and dropped until it closes (at most a second).
    pub fn abort(&mut self, why: &str) {
        let short = Some(Duration::from_secs(1));
        self.stream.set_write_timeout(short).ok();
        if self.send(Tag::Abort, why.as_bytes()).is_err() {
            return;
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        self.stream.set_read_timeout(short).ok();
        let until = std::time::Instant::now() + Duration::from_secs(1);
        let mut sink = [0u8; 1 << 16];
        while std::time::Instant::now() < until {
            match self.stream.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair(
        host: &'static [u8],
        join: &'static [u8],
    ) -> (Result<Link, String>, Result<Link, String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = Duration::from_secs(5);
        let h = std::thread::spawn(move || Link::accept(l.accept().unwrap().0, host, t));
        let c = Link::connect(TcpStream::connect(addr).unwrap(), join, t);
        (h.join().unwrap(), c)
    }

    #[test]
    fn same_secret_talks_and_another_is_refused() {
        let (h, c) = pair(b"s3cret-s3cret-s3cret", b"s3cret-s3cret-s3cret");
        let (mut h, mut c) = (h.unwrap(), c.unwrap());
        c.send(Tag::Data, &[1, 2, 3, 4]).unwrap();
        let mut got = [0u8; 4];
        h.recv_data(&mut got).unwrap();
        assert_eq!(got, [1, 2, 3, 4]);
        // a frame longer than the reader accepts is refused before it is read
        c.send(Tag::Hello, &[0; 100]).unwrap();
        assert!(h.recv(10).unwrap_err().contains("at most 10"));
        h.abort("node 2 did something");
        let mut buf = [0u8; 8];
        assert!(c
            .recv_data(&mut buf)
            .unwrap_err()
            .contains("node 2 did something"));

        let (h, c) = pair(b"s3cret-s3cret-s3cret", b"another-secret-here!");
        assert!(h.err().unwrap().contains("failed authentication"));
        assert!(c.is_err());
    }

    #[test]
    fn a_stranger_gets_no_answer_past_the_magic() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            Link::accept(l.accept().unwrap().0, b"secret", Duration::from_millis(500))
        });
        let mut s = TcpStream::connect(addr).unwrap();
        let mut head = [0u8; MAGIC.len() + NONCE];
        s.read_exact(&mut head).unwrap();
        s.write_all(&[0xAB; 64]).unwrap();
        assert!(h
            .join()
            .unwrap()
            .err()
            .unwrap()
            .contains("failed authentication"));
        // silence: the handshake ends at the timeout
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            Link::accept(l.accept().unwrap().0, b"secret", Duration::from_millis(300))
        });
        let _s = TcpStream::connect(addr).unwrap();
        assert!(h.join().unwrap().err().unwrap().contains("no answer"));
    }
}
