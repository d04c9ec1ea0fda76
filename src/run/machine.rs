//! The machine's memory, what allocations are checked against before they are made: a model's
//! weights when they load into host memory, a training run's estimate on a CPU backend.

/// Bytes of RAM plus swap (`MemTotal` + `SwapTotal` of `/proc/meminfo`); `None` where that
/// cannot be read (then nothing is refused).
pub fn memory_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = |key: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse::<f64>().ok()
    };
    Some((kib("MemTotal:")? + kib("SwapTotal:").unwrap_or(0.0)) * 1024.0)
}

/// `bytes` in GiB, for messages.
pub fn gib(bytes: f64) -> f64 {
    bytes / (1u64 << 30) as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_machine_has_memory() {
        let m = super::memory_bytes().unwrap();
        assert!(m > 1e8 && m < 1e15, "{m}");
    }
}
