//! Multi-node runs whose nodes fail (README's launch command, over loopback; see
//! `tests/nodes.rs`): a node killed or stopped at a random step stops every other node within
//! the timeout, each naming it; SIGTERM on any node stops all at one step with one checkpoint
//! each, and the resumed nodes end bit-identical to an uninterrupted run.

mod common;
mod nodes_common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::step_values;
use nodes_common::*;

#[test]
fn a_dead_or_stopped_node_stops_every_other_node_naming_it() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let secret = secret_file(tmp.path(), "secret", "correct horse battery staple\n");
    let timeout = 5;
    let mut seed = 0x5eed_1234_u64;
    // every node of two and of three, killed and stopped
    let cases = [2usize, 3].into_iter().flat_map(|count| {
        (0..count).flat_map(move |victim| {
            [(libc::SIGKILL, "kill"), (libc::SIGSTOP, "stop")]
                .map(|(sig, what)| (count, victim, sig, what))
        })
    });
    for (trial, (count, victim, sig, what)) in cases.enumerate() {
        let to = format!("node_timeout_s={timeout}");
        let launch = Launch {
            config: CONFIG,
            count,
            port: free_port(),
            secret: &secret,
            sets: sets(&["max_steps=100000", "save_steps=0", &to]),
        };
        let runs: Vec<PathBuf> = (0..count)
            .map(|r| tmp.path().join(format!("t{trial}-node{r}")))
            .collect();
        let mut nodes = launch.start_all(&runs);
        let at = pick(&mut seed, 2, 40);
        wait_for_steps(&runs[victim], at, &mut nodes[victim]);
        nodes[victim].signal(sig);
        let t0 = Instant::now();
        let mut others: Vec<Node> = Vec::new();
        let mut victim_node = None;
        for n in nodes {
            match n.rank == victim {
                true => victim_node = Some(n),
                false => others.push(n),
            }
        }
        wait_all(&mut others, Duration::from_secs(timeout + 30));
        let took = t0.elapsed();
        for n in &others {
            let err = n.stderr();
            assert!(!n.status.unwrap().success(), "{what} {victim}: {err}");
            let last = err.trim().lines().last().unwrap_or_default().to_string();
            assert!(
                last.contains(&format!("node {victim}")) && !err.contains("panicked"),
                "{what} node {victim} of {count} at step {at}: node {} said: {err}",
                n.rank
            );
        }
        assert!(
            took < Duration::from_secs(2 * timeout + 10),
            "{what} {victim}: the others took {took:?}"
        );
        drop(victim_node);
    }
}

#[test]
fn sigterm_on_any_node_stops_all_at_one_checkpoint_and_they_resume_exactly() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let secret = secret_file(tmp.path(), "secret", "correct horse battery staple\n");
    let base = ["max_steps=60", "save_steps=0", "node_timeout_s=60"];
    let mut seed = 0xfeed_beef_u64;
    let cases = [(2, 0), (2, 1), (3, 0), (3, 1), (3, 2)];
    for (trial, (count, victim)) in cases.into_iter().enumerate() {
        let one = tmp.path().join(format!("t{trial}-one"));
        one_process(CONFIG, &one, count, &base);
        let launch = Launch {
            config: CONFIG,
            count,
            port: free_port(),
            secret: &secret,
            sets: sets(&base),
        };
        let runs: Vec<PathBuf> = (0..count)
            .map(|r| tmp.path().join(format!("t{trial}-node{r}")))
            .collect();
        let mut nodes = launch.start_all(&runs);
        let at = pick(&mut seed, 1, 30);
        wait_for_steps(&runs[victim], at, &mut nodes[victim]);
        nodes[victim].signal(libc::SIGTERM);
        wait_all(&mut nodes, Duration::from_secs(120));
        // every node stopped at the same step, with one checkpoint of it
        let mut stopped = Vec::new();
        for (n, run) in nodes.iter().zip(&runs) {
            let err = n.stderr();
            assert_eq!(
                n.status.unwrap().code(),
                Some(143),
                "node {}: {err}",
                n.rank
            );
            assert!(err.contains(&format!("SIGTERM on node {victim}")), "{err}");
            let ckpts: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(ckpts.len(), 1, "node {}: {ckpts:?}", n.rank);
            stopped.push(ckpts[0].clone());
        }
        assert!(stopped.iter().all(|s| *s == stopped[0]), "{stopped:?}");
        assert_ne!(stopped[0], "step-000060", "stopped after the last step");
        // the same command continues every node; they end as one process would have
        let port = free_port();
        let mut nodes = Launch { port, ..launch }.start_all(&runs);
        wait_all(&mut nodes, Duration::from_secs(120));
        assert_all_succeeded(&nodes);
        for run in &runs {
            assert_eq!(step_values(run), step_values(&one), "{}", run.display());
            assert!(weights(run) == weights(&one), "{}", run.display());
        }
    }
}

/// A signal to a node still waiting for the others ends it at once (128 + the signal), names
/// the wait, and leaves nothing written; node 0 tells the nodes that joined.
#[test]
fn a_signal_while_joining_ends_the_wait() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let secret = secret_file(tmp.path(), "secret", "correct horse battery staple\n");
    for (rank, count, needle) in [
        (1, 2, "while waiting for node 0"),
        (0, 3, "before every node had joined"),
    ] {
        let launch = Launch {
            config: CONFIG,
            count,
            port: free_port(),
            secret: &secret,
            sets: sets(&["max_steps=4"]),
        };
        let run = tmp.path().join(format!("waiting-{rank}"));
        let mut waiting = vec![launch.start(rank, &run)];
        let mut joined = None;
        if rank == 0 {
            // node 1 joins; node 2 never comes
            joined = Some(launch.start(1, &tmp.path().join("joined-1")));
        }
        let t0 = Instant::now();
        while !waiting[0].stderr().contains("joining the others") {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "{}",
                waiting[0].stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(500));
        waiting[0].signal(libc::SIGTERM);
        wait_all(&mut waiting, Duration::from_secs(10));
        let err = waiting[0].stderr();
        assert_eq!(waiting[0].status.unwrap().code(), Some(143), "{err}");
        assert!(err.contains(needle) && err.contains("SIGTERM"), "{err}");
        assert!(!run.exists(), "wrote {}", run.display());
        if let Some(j) = joined {
            let mut j = vec![j];
            wait_all(&mut j, Duration::from_secs(10));
            let err = j[0].stderr();
            assert!(!j[0].status.unwrap().success(), "{err}");
            assert!(err.contains("interrupted by SIGTERM"), "{err}");
        }
    }
}
