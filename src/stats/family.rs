//! Testing several claims at once: Holm's step-down correction over a family named in advance.
//!
//! Holm (1979) controls the chance of any false verdict in the family at α, for any dependence
//! between the tests (the laptop table's claims share rows, so they are dependent), and rejects
//! at least what Bonferroni rejects. A claim's verdict is directional: a rejected null with the
//! estimate on the claimed side "holds", on the other side "the opposite holds" (the two-sided
//! test's directional decision, which Holm's guarantee extends to; Shaffer 1980).

/// Holm-adjusted p-values, in the order given: `p_adj(i) = max over j ≤ rank(i) of
/// min(1, (m − j) · p_(j))`. A test is rejected at level α when its adjusted p ≤ α.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand: p = (0.01, 0.04, 0.03, 0.005), m = 4. Sorted 0.005, 0.01, 0.03, 0.04 →
    /// 4·0.005 = 0.02, 3·0.01 = 0.03, 2·0.03 = 0.06, max(0.06, 1·0.04) = 0.06. At α = 0.05 the
    /// first two are rejected; the unadjusted 0.03 and 0.04 are not.
    #[test]
    fn holm_by_hand() {
        let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
        let want = [0.03, 0.06, 0.06, 0.02];
        for (a, w) in adj.iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{adj:?}");
        }
        assert_eq!(holm(&[0.6, 0.9]), vec![1.0, 1.0]);
        assert!(holm(&[]).is_empty());
    }
}
