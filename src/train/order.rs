//! Which problems a step trains on: the dataset is walked in a fresh shuffled order each epoch
//! (seeded by the run's seed and the epoch number), so the problems of step k depend only on
//! (seed, data position) and a resumed run draws exactly what the uninterrupted run drew.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The order of epoch `epoch` over `n` problems.
pub fn epoch_order(n: usize, seed: u64, epoch: usize, shuffle: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(epoch as u64);
        order.shuffle(&mut rng);
    }
    order
}

/// The `count` problems starting at data position `position` (positions run across epochs).
pub fn step_problems(
    n: usize,
    count: usize,
    position: usize,
    seed: u64,
    shuffle: bool,
) -> Vec<usize> {
    let mut out = Vec::with_capacity(count);
    let mut cached: Option<(usize, Vec<usize>)> = None;
    for p in position..position + count {
        let epoch = p / n;
        if cached.as_ref().is_none_or(|(e, _)| *e != epoch) {
            cached = Some((epoch, epoch_order(n, seed, epoch, shuffle)));
        }
        if let Some((_, order)) = &cached {
            out.push(order[p % n]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_once_per_epoch_and_reproducible() {
        let a: Vec<usize> = (0..5)
            .flat_map(|k| step_problems(10, 2, 2 * k, 7, true))
            .collect();
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_eq!(a, step_problems(10, 10, 0, 7, true));
        // crossing into the next epoch takes that epoch's order
        let next = epoch_order(10, 7, 1, true);
        assert_eq!(step_problems(10, 4, 8, 7, true)[2..], next[..2]);
        assert_ne!(epoch_order(10, 7, 0, true), next);
        assert_eq!(step_problems(4, 3, 2, 7, false), vec![2, 3, 0]);
    }
}
