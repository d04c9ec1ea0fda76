//! Running an untrusted program with bounds: what `[reward.commands.NAME]` programs run under.
//!
//! - **Its own process group.** A terminal's Ctrl-C (SIGINT) and Ctrl-Z (SIGTSTP) go to the
//!   foreground group, mgrpo's, and not to the program: Ctrl-C reaches only mgrpo, which
//!   finishes the step (this program's batch included) and checkpoints it.
//! - **Killed as a whole.** On a timeout, on too much output, and once it exits, the whole
//!   group gets SIGKILL: nothing it started can outlive the batch or hold its stdout open. (A
//!   process that leaves the group with `setsid` escapes that; if it keeps stdout open, the
//!   batch fails after [`HELD_GRACE`] instead of waiting for it.)
//! - **Time counts only while mgrpo runs.** A poll loop adds up the time between polls; a gap
//!   much longer than the poll interval is mgrpo being stopped (Ctrl-Z, a debugger, a
//!   suspended laptop) and is not counted against the timeout.
//! - **Output is capped.** Stdout beyond `max_stdout` bytes kills the group; only the last
//!   [`STDERR_TAIL`] bytes of stderr are kept.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Bytes of stderr kept (its end: where a traceback's exception is).
pub const STDERR_TAIL: usize = 64 << 10;
/// How long the output pipes may stay open after the group was killed.
pub const HELD_GRACE: Duration = Duration::from_secs(2);
/// The longest poll interval.
const POLL: Duration = Duration::from_millis(20);
/// A gap between two polls longer than this beyond the interval is time mgrpo was stopped.
const STOPPED_GAP: Duration = Duration::from_millis(500);

/// The bounds one run is held to.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Running time (mgrpo's stopped time excluded).
    pub timeout: Duration,
    /// Bytes of stdout.
    pub max_stdout: usize,
}

/// How a bounded run ended.
#[derive(Debug)]
pub enum Outcome {
    /// It exited (or was killed by a signal not ours) and its output was read to the end.
    Exited {
        status: ExitStatus,
        stdout: Vec<u8>,
        stderr_tail: Vec<u8>,
    },
    /// Still running at the timeout: its group was killed.
    TimedOut,
    /// It wrote more than `max_stdout` bytes: its group was killed.
    TooMuchOutput,
    /// It exited, but a process outside its group still held its stdout or stderr open
    /// [`HELD_GRACE`] after.
    HeldOpen,
}

/// SIGKILL to every process of the group `pgid` (its leader's pid). Called only while the
/// leader is unreaped, so the id cannot have been reused.
fn kill_group(pgid: u32) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid) {
        // ESRCH (the group is gone) is fine
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
    }
}

/// Whether `child` has exited, without reaping it (the group id stays reserved).
fn exited(child: &Child) -> std::io::Result<bool> {
    let pid: libc::id_t = child.id();
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // with WNOHANG, si_pid stays 0 while the child runs
    Ok(unsafe { info.si_pid() } != 0)
}

/// Read `r` to its end on a thread: the first `cap` bytes (`keep_tail`: the last `cap`),
/// raising `over` and returning when more than `cap` arrive (unless `keep_tail`).
fn read_capped<R: Read + Send + 'static>(
    mut r: R,
    cap: usize,
    keep_tail: bool,
    over: Arc<AtomicBool>,
) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() > cap {
                        if keep_tail {
                            buf.drain(..buf.len() - cap);
                        } else {
                            over.store(true, Ordering::Relaxed);
                            break;
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // a read error ends the output early; the caller's checks report it
                Err(_) => break,
            }
        }
        let _ = tx.send(buf);
    });
    rx
}

/// Run `argv` with `input` on its stdin, bounded by `limits` (see the module's header).
/// `Err` only when it cannot be started or waited for.
pub fn run(argv: &[String], input: Vec<u8>, limits: Limits) -> std::io::Result<Outcome> {
    let Some((program, args)) = argv.split_first() else {
        return Err(std::io::Error::other("the command names no program"));
    };
    let mut child = Command::new(program)
        .args(args)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pgid = child.id();
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        kill_group(pgid);
        let _ = child.wait();
        return Err(std::io::Error::other("its pipes could not be opened"));
    };
    // a program that exits without reading everything closes the pipe (EPIPE ends this
    // thread); one whose stdin an escaped process holds unread leaves it blocked, detached
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let over = Arc::new(AtomicBool::new(false));
    let out = read_capped(stdout, limits.max_stdout, false, over.clone());
    let err = read_capped(stderr, STDERR_TAIL, true, over.clone());

    let mut counted = Duration::ZERO;
    let mut last = Instant::now();
    let mut pause = Duration::from_millis(1);
    let ended = loop {
        if exited(&child)? {
            break None;
        }
        if over.load(Ordering::Relaxed) {
            break Some(Outcome::TooMuchOutput);
        }
        let now = Instant::now();
        let gap = now - last;
        last = now;
        // a gap far beyond the pause: mgrpo was stopped; count the pause only
        counted += if gap > pause + STOPPED_GAP {
            pause
        } else {
            gap
        };
        if counted >= limits.timeout {
            break Some(Outcome::TimedOut);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(POLL);
    };
    // whatever is left of the group (all of it, or what the program left behind) goes now,
    // before the leader is reaped
    kill_group(pgid);
    let status = child.wait()?;
    if let Some(outcome) = ended {
        return Ok(outcome);
    }
    let deadline = Instant::now() + HELD_GRACE;
    let left = || deadline.saturating_duration_since(Instant::now());
    let (Ok(stdout), Ok(stderr_tail)) = (out.recv_timeout(left()), err.recv_timeout(left())) else {
        return Ok(Outcome::HeldOpen);
    };
    if over.load(Ordering::Relaxed) {
        return Ok(Outcome::TooMuchOutput);
    }
    Ok(Outcome::Exited {
        status,
        stdout,
        stderr_tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    fn limits(timeout_s: f64) -> Limits {
        Limits {
            timeout: Duration::from_secs_f64(timeout_s),
            max_stdout: 1 << 20,
        }
    }

    fn alive(pid: i32) -> bool {
        // a zombie is not alive: look at its state
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(s) => !s
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z'),
            Err(_) => false,
        }
    }

    #[test]
    fn output_and_status_come_back() {
        let o = run(
            &sh("cat; echo oops >&2; exit 3"),
            b"1\n2\n".to_vec(),
            limits(10.0),
        );
        match o.unwrap() {
            Outcome::Exited {
                status,
                stdout,
                stderr_tail,
            } => {
                assert_eq!(status.code(), Some(3));
                assert_eq!(stdout, b"1\n2\n");
                assert_eq!(stderr_tail, b"oops\n");
            }
            other => panic!("{other:?}"),
        }
    }

    /// A timeout kills the program's children too, not only the program.
    #[test]
    fn a_timeout_kills_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("mgrpo-pg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        let script = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let t = Instant::now();
        assert!(matches!(
            run(&sh(&script), Vec::new(), limits(0.5)).unwrap(),
            Outcome::TimedOut
        ));
        assert!(t.elapsed() < Duration::from_secs(5));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !alive(pid),
            "the program's child {pid} outlived the timeout"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A program that exits leaving a child that holds its stdout does not block the caller
    /// for the child's lifetime: the child is killed with the group.
    #[test]
    fn a_child_holding_stdout_does_not_block() {
        let t = Instant::now();
        let o = run(&sh("echo 1; sleep 60 &"), Vec::new(), limits(30.0)).unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        match o {
            Outcome::Exited { stdout, .. } => assert_eq!(stdout, b"1\n"),
            other => panic!("{other:?}"),
        }
        // one that escapes the group with setsid and keeps stdout: a bounded wait, named
        if std::process::Command::new("setsid")
            .arg("--version")
            .output()
            .is_ok()
        {
            let t = Instant::now();
            let o = run(
                &sh("setsid sleep 5 & sleep 0.3; echo 1"),
                Vec::new(),
                limits(30.0),
            )
            .unwrap();
            assert!(matches!(o, Outcome::HeldOpen), "{o:?}");
            assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
        }
    }

    /// Endless output is cut at the cap, not buffered whole.
    #[test]
    fn output_beyond_the_cap_kills_the_program() {
        let t = Instant::now();
        let o = run(&["yes".to_string(), "1".into()], Vec::new(), limits(30.0)).unwrap();
        assert!(matches!(o, Outcome::TooMuchOutput), "{o:?}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    /// The program is in its own process group, so the terminal's signals do not reach it.
    #[test]
    fn the_program_has_its_own_process_group() {
        let o = run(&sh("cut -d' ' -f5 /proc/$$/stat"), Vec::new(), limits(10.0)).unwrap();
        let Outcome::Exited { stdout, .. } = o else {
            panic!("{o:?}")
        };
        let theirs: i32 = String::from_utf8_lossy(&stdout).trim().parse().unwrap();
        let ours = unsafe { libc::getpgrp() };
        assert_ne!(theirs, ours);
    }
}
