//! The trainer's side of a multi-node run (`rl::mesh`): join the other nodes before anything
//! is written, stop every node at the same step boundary when any node is interrupted, and
//! keep a checkpoint only once every node has written it.

use std::path::Path;
use std::sync::Arc;

use super::checkpoint;
use super::identity::node_identity;
use super::TrainConfig;
use super::TrainOptions;
use crate::error::{Error, Result};
use crate::rl::mesh::{Hello, Mesh, NodeSpec};
use crate::run::interrupt::Interrupt;

/// How this node joins the others, in a multi-node run (the secret read now).
pub fn spec(cfg: &TrainConfig) -> Result<Option<NodeSpec>> {
    if cfg.num_nodes <= 1 {
        return Ok(None);
    }
    Ok(Some(NodeSpec {
        count: cfg.num_nodes,
        rank: cfg.node_rank,
        rendezvous: cfg.rendezvous.clone(),
        secret: super::secret::read(&cfg.node_secret_file)?,
        timeout: std::time::Duration::from_secs_f64(cfg.node_timeout_s),
    }))
}

/// Join the other nodes of `opts`' run (none: `None`). Each node says the step it starts from
/// (its newest checkpoint's, when resuming) and what it runs; node 0 refuses to start nodes
/// that disagree.
pub fn join(opts: &TrainOptions) -> Result<Option<Arc<Mesh>>> {
    let cfg = &opts.config;
    let Some(spec) = spec(cfg)? else {
        return Ok(None);
    };
    let step = match opts.resume {
        true => checkpoint::list(&opts.run_dir)?
            .last()
            .map_or(0, |(s, _)| *s),
        false => 0,
    };
    let hello = Hello {
        rank: spec.rank,
        count: spec.count,
        step,
        little_endian: cfg!(target_endian = "little"),
        identity: node_identity(cfg)?,
    };
    eprintln!(
        "node {} of {}: joining the others at {} (from step {step})",
        spec.rank, spec.count, spec.rendezvous
    );
    let mesh = Mesh::join(&spec, &hello)?;
    eprintln!("node {}: every node joined", spec.rank);
    Ok(Some(Arc::new(mesh)))
}

/// A stop every node agreed on: the signal, and where it arrived.
pub struct Stop {
    pub interrupt: Interrupt,
    /// `SIGTERM` or `SIGTERM on node 1`.
    pub by: String,
}

/// Whether to stop after this step: this node's signal, or any node's (every node calls this
/// after every step, so all stop at the same one).
pub fn agree_stop(mesh: Option<&Mesh>, local: Option<Interrupt>) -> Result<Option<Stop>> {
    let Some(mesh) = mesh else {
        return Ok(local.map(|interrupt| Stop {
            interrupt,
            by: interrupt.name().to_string(),
        }));
    };
    let mut signals = vec![0f32; mesh.count];
    signals[mesh.rank] = local.map_or(0, |i| i.signal) as f32;
    mesh.sum(&mut signals, "agreeing whether to stop")?;
    let Some((node, &signal)) = signals.iter().enumerate().find(|(_, s)| **s > 0.0) else {
        return Ok(None);
    };
    let interrupt = local.unwrap_or(Interrupt {
        signal: signal as i32,
    });
    let first = Interrupt {
        signal: signal as i32,
    };
    Ok(Some(Stop {
        interrupt,
        by: format!("{} on node {node}", first.name()),
    }))
}

/// After this node wrote the checkpoint `dir`: keep it once every node has written its own;
/// remove it if another node failed, so that the nodes' newest checkpoints stay the same step.
pub fn confirm_checkpoint(mesh: Option<&Mesh>, dir: &Path) -> Result<()> {
    let Some(mesh) = mesh else { return Ok(()) };
    if let Err(e) = mesh.any(false, "confirming the checkpoint") {
        let _ = std::fs::remove_dir_all(dir);
        return Err(e);
    }
    Ok(())
}

/// This node fails with `e`: tell the other nodes why (a stop they agreed on, or a failure of
/// the nodes themselves, they know already).
pub fn tell_others(mesh: Option<&Mesh>, e: &Error) {
    if let Some(mesh) = mesh {
        if !matches!(e, Error::Interrupted { .. } | Error::Node { .. }) {
            mesh.abort(&e.to_string());
        }
    }
}
