//! The verifier's numbers: exact big rationals, high-precision approximations (for √, π, e,
//! logarithms and trigonometry), and ±∞ (interval ends).
//!
//! Exact values are compared exactly, so 1000000 ≠ 1000001 and 1/2^99 ≠ 1/2^98. A value that
//! involves an irrational operation becomes an approximation with a [`PREC`]-bit mantissa; two
//! approximations are equal when they agree to [`TOL_BITS`] bits (about 60 significant
//! digits), far beyond any decimal a model writes and far below the rounding noise of the
//! computation. Every operation checks size caps and returns `None` rather than growing without
//! bound, so no input can make the verifier slow or exhaust memory.

use std::sync::OnceLock;

use super::series::{exp, ln, nth_root, pi, sin_cos};

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// Largest numerator or denominator (in bits) any exact value may have: `1000!` (8530 bits)
/// fits, `10^{10^{10}}` does not.
pub const MAX_BITS: u64 = 16_384;
/// Mantissa bits of an approximation.
pub(super) const PREC: u64 = 320;
/// Two approximations are equal when they agree to this many bits.
const TOL_BITS: i64 = 200;
/// Largest `n` for `n!`.
const MAX_FACTORIAL: u64 = 1_500;

/// A number: exact, approximate (irrational), or infinite.
#[derive(Clone, Debug, PartialEq)]
pub enum Num {
    Exact(BigRational),
    Approx(BigRational),
    /// `true` for +∞.
    Inf(bool),
}

pub(super) fn bits(q: &BigRational) -> u64 {
    q.numer().bits().max(q.denom().bits())
}

fn checked(q: BigRational) -> Option<BigRational> {
    (bits(&q) <= MAX_BITS).then_some(q)
}

pub(super) fn pow2(k: u64) -> BigInt {
    BigInt::one() << k
}

/// `q` rounded (toward zero) to [`PREC`] significant bits; `None` when its binary exponent is
/// beyond the size caps.
pub(super) fn round(q: BigRational) -> Option<BigRational> {
    if q.is_zero() {
        return Some(q);
    }
    let e = q.numer().bits() as i64 - q.denom().bits() as i64;
    if e.unsigned_abs() > MAX_BITS {
        return None;
    }
    let k = PREC as i64 - e;
    let scaled = if k >= 0 {
        (q.numer() << k as u64) / q.denom()
    } else {
        q.numer() / (q.denom() << (-k) as u64)
    };
    Some(if k >= 0 {
        BigRational::new(scaled, pow2(k as u64))
    } else {
        BigRational::from_integer(scaled << (-k) as u64)
    })
}

pub(super) fn int(n: i64) -> BigRational {
    BigRational::from_integer(BigInt::from(n))
}

impl Num {
    pub fn int(n: i64) -> Self {
        Num::Exact(int(n))
    }

    /// The value as a rational (an approximation's stored value); `None` for ±∞.
    pub fn rational(&self) -> Option<&BigRational> {
        match self {
            Num::Exact(q) | Num::Approx(q) => Some(q),
            Num::Inf(_) => None,
        }
    }

    pub fn is_exact(&self) -> bool {
        matches!(self, Num::Exact(_))
    }

    fn approx(q: BigRational) -> Option<Self> {
        round(q).map(Num::Approx)
    }

    /// Combine two finite values: exact when both are, otherwise an approximation.
    fn lift(
        &self,
        other: &Num,
        f: impl Fn(&BigRational, &BigRational) -> BigRational,
    ) -> Option<Num> {
        let (a, b) = (self.rational()?, other.rational()?);
        if self.is_exact() && other.is_exact() {
            // Cheap pre-check so that a huge product is never formed.
            if bits(a) + bits(b) > 2 * MAX_BITS {
                return None;
            }
            checked(f(a, b)).map(Num::Exact)
        } else {
            Num::approx(f(a, b))
        }
    }

    pub fn neg(&self) -> Num {
        match self {
            Num::Exact(q) => Num::Exact(-q),
            Num::Approx(q) => Num::Approx(-q),
            Num::Inf(p) => Num::Inf(!p),
        }
    }

    pub fn add(&self, o: &Num) -> Option<Num> {
        self.lift(o, |a, b| a + b)
    }

    pub fn sub(&self, o: &Num) -> Option<Num> {
        self.lift(o, |a, b| a - b)
    }

    pub fn mul(&self, o: &Num) -> Option<Num> {
        self.lift(o, |a, b| a * b)
    }

    pub fn div(&self, o: &Num) -> Option<Num> {
        if o.rational()?.is_zero() {
            return None;
        }
        self.lift(o, |a, b| a / b)
    }

    pub fn is_zero(&self) -> bool {
        self.rational().is_some_and(Zero::is_zero)
    }

    /// The exact integer value, if this is one.
    pub fn as_integer(&self) -> Option<BigInt> {
        match self {
            Num::Exact(q) if q.is_integer() => Some(q.to_integer()),
            _ => None,
        }
    }

    /// `self ^ e`: exact for rational bases with integer exponents and for perfect roots,
    /// otherwise an approximation; `None` for undefined or oversized results.
    pub fn pow(&self, e: &Num) -> Option<Num> {
        let base = self.rational()?;
        if let Num::Exact(q) = e {
            let (p, r) = (q.numer(), q.denom());
            // Integer exponent (r == 1) or a root (r small).
            if let (Some(p), Some(r)) = (p.to_i64(), r.to_u32()) {
                if r <= 64 {
                    return self.pow_rational(base, p, r);
                }
            }
        }
        // Irrational exponent: exp(e ln b), b > 0.
        if !base.is_positive() {
            return (base.is_zero() && e.rational()?.is_positive()).then(|| Num::int(0));
        }
        let ln = ln(base)?;
        Num::approx(exp(&round(ln * e.rational()?)?)?)
    }

    fn pow_rational(&self, base: &BigRational, p: i64, r: u32) -> Option<Num> {
        if base.is_zero() {
            return (p > 0).then(|| Num::int(0));
        }
        if base.is_one() {
            return Some(self.clone());
        }
        if (-base).is_one() && r == 1 {
            return Some(Num::int(if p % 2 == 0 { 1 } else { -1 }));
        }
        // r-th root first (real roots only: even roots of negatives are undefined).
        let negative = base.is_negative();
        if negative && r.is_multiple_of(2) {
            return None;
        }
        let abs = base.abs();
        let root = match self {
            Num::Exact(_) if r == 1 => Num::Exact(abs),
            Num::Exact(_) => match (exact_root(abs.numer(), r), exact_root(abs.denom(), r)) {
                (Some(n), Some(d)) => Num::Exact(BigRational::new(n, d)),
                _ => Num::Approx(nth_root(&abs, r)?),
            },
            _ if r == 1 => Num::Approx(abs),
            _ => Num::Approx(nth_root(&abs, r)?),
        };
        let root = if negative { root.neg() } else { root };
        // Integer power by squaring, with the size checked up front for exact values.
        let n = p.unsigned_abs();
        if let Num::Exact(q) = &root {
            if bits(q).saturating_mul(n) > MAX_BITS {
                return None;
            }
        } else if n > 1 << 20 {
            return None;
        }
        let mut acc = Num::int(1);
        let mut sq = root;
        let mut k = n;
        while k > 0 {
            if k & 1 == 1 {
                acc = acc.mul(&sq)?;
            }
            k >>= 1;
            if k > 0 {
                sq = sq.mul(&sq)?;
            }
        }
        if p < 0 {
            Num::int(1).div(&acc)
        } else {
            Some(acc)
        }
    }

    /// `n!` for an exact integer `0 <= n <= 1500`.
    pub fn factorial(&self) -> Option<Num> {
        let n = self.as_integer()?.to_u64()?;
        if n > MAX_FACTORIAL {
            return None;
        }
        let f = (2..=n).fold(BigInt::one(), |acc, k| acc * k);
        Some(Num::Exact(BigRational::from_integer(f)))
    }

    /// The binomial coefficient `C(n, k)` for exact integers (0 when `k > n` or `k < 0`).
    pub fn binomial(&self, k: &Num) -> Option<Num> {
        let n = self.as_integer()?;
        let k = k.as_integer()?;
        if k.is_negative() || n.is_negative() || k > n {
            return Some(Num::int(0));
        }
        let k = k.clone().min(&n - &k).to_u64()?;
        if k > 10_000 {
            return None;
        }
        let mut acc = BigInt::one();
        for i in 0..k {
            acc = acc * (&n - i) / (i + 1);
            if acc.bits() > MAX_BITS {
                return None;
            }
        }
        Some(Num::Exact(BigRational::from_integer(acc)))
    }

    /// `e^x`.
    pub fn exp(&self) -> Option<Num> {
        let x = self.rational()?;
        if x.is_zero() {
            return Some(Num::int(1));
        }
        Num::approx(exp(x)?)
    }

    /// Natural logarithm (positive arguments only; `ln 1 = 0` exactly).
    pub fn ln(&self) -> Option<Num> {
        let x = self.rational()?;
        if x.is_one() && self.is_exact() {
            return Some(Num::int(0));
        }
        if !x.is_positive() {
            return None;
        }
        Num::approx(ln(x)?)
    }

    /// `log_b x`: exact when `x` is an exact power of an exact `b`.
    pub fn log(&self, base: &Num) -> Option<Num> {
        let (b, x) = (base.rational()?, self.rational()?);
        if !b.is_positive() || b.is_one() || !x.is_positive() {
            return None;
        }
        if let (Num::Exact(b), Num::Exact(x)) = (base, self) {
            if let Some(k) = exact_log(b, x) {
                return Some(Num::int(k));
            }
        }
        let (lx, lb) = (ln(x)?, ln(b)?);
        Num::approx(lx / lb)
    }

    /// Sine, cosine, tangent of a value in radians (exact at 0).
    pub fn trig(&self, f: Trig) -> Option<Num> {
        let x = self.rational()?;
        if x.is_zero() {
            return Some(Num::int(if f == Trig::Cos { 1 } else { 0 }));
        }
        if bits(x) > 4096 || x.abs() > int(1 << 40) {
            return None;
        }
        let (s, c) = sin_cos(x)?;
        match f {
            Trig::Sin => Num::approx(s),
            Trig::Cos => Num::approx(c),
            Trig::Tan => {
                if c.is_zero() {
                    return None;
                }
                Num::approx(s / c)
            }
        }
    }

    /// Equality: exact values exactly, approximations to [`TOL_BITS`] bits (relative, with an
    /// absolute floor of 2^-260 for values near zero).
    pub fn equals(&self, other: &Num) -> bool {
        match (self, other) {
            (Num::Inf(a), Num::Inf(b)) => a == b,
            (Num::Inf(_), _) | (_, Num::Inf(_)) => false,
            (Num::Exact(a), Num::Exact(b)) => a == b,
            (a, b) => {
                let (a, b) = (a.rational().cloned(), b.rational().cloned());
                let (Some(a), Some(b)) = (a, b) else {
                    return false;
                };
                let diff = (&a - &b).abs();
                let scale = a
                    .abs()
                    .max(b.abs())
                    .max(BigRational::new(BigInt::one(), pow2(60)));
                diff * BigRational::from_integer(pow2(TOL_BITS as u64)) <= scale
            }
        }
    }

    /// `|self - other| <= tol`.
    pub fn within(&self, other: &Num, tol: &BigRational) -> bool {
        match (self.rational(), other.rational()) {
            (Some(a), Some(b)) => (a - b).abs() <= *tol,
            _ => false,
        }
    }

    /// Absolute value.
    pub fn abs(&self) -> Num {
        match self {
            Num::Exact(q) => Num::Exact(q.abs()),
            Num::Approx(q) => Num::Approx(q.abs()),
            Num::Inf(_) => Num::Inf(true),
        }
    }

    /// Floor or ceiling of an exact value or an approximation that is not within rounding
    /// noise of an integer.
    pub fn round_to_int(&self, ceil: bool) -> Option<Num> {
        let q = self.rational()?;
        let r = if ceil { q.ceil() } else { q.floor() };
        if !self.is_exact() && Num::Approx(r.clone()).equals(self) {
            return None; // too close to an integer to decide
        }
        Some(Num::Exact(r))
    }

    /// π.
    pub fn pi() -> Num {
        Num::Approx(pi().clone())
    }

    /// Euler's number.
    pub fn e() -> Num {
        static E: OnceLock<BigRational> = OnceLock::new();
        Num::Approx(
            E.get_or_init(|| exp(&int(1)).unwrap_or_else(|| int(0)))
                .clone(),
        )
    }
}

/// Which trigonometric function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trig {
    Sin,
    Cos,
    Tan,
}

/// The exact integer `r`-th root of `n >= 0`, if there is one.
fn exact_root(n: &BigInt, r: u32) -> Option<BigInt> {
    let x = n.nth_root(r);
    (x.pow(r) == *n).then_some(x)
}

/// `k` with `b^k = x`, if there is an integer one.
fn exact_log(b: &BigRational, x: &BigRational) -> Option<i64> {
    let (base, inv) = if b > &int(1) {
        (b.clone(), false)
    } else {
        (b.recip(), true)
    };
    let (target, up) = if x >= &int(1) {
        (x.clone(), true)
    } else {
        (x.recip(), false)
    };
    // k from the logarithms' estimate, then checked exactly at k and its neighbours: one power
    // by squaring each, not k multiplications (each reducing a fraction by a gcd: log₃ 1000!
    // took a second that way)
    let estimate = log2(&target) / log2(&base);
    if !estimate.is_finite() || estimate > (64 * 1024) as f64 {
        return None;
    }
    let k = estimate.round() as i64;
    let base_bits = bits(&base).max(1);
    let found = (k - 1..=k + 1)
        .filter(|&c| c >= 0)
        .find(|&c| c as u64 * base_bits <= MAX_BITS + base_bits && base.pow(c as i32) == target)?;
    let k = if up { found } else { -found };
    Some(if inv { -k } else { k })
}

/// `log₂ q` in f64 for a positive rational of any size (the top 64 bits of each side).
fn log2(q: &BigRational) -> f64 {
    let side = |n: &BigInt| {
        let b = n.bits();
        let shift = b.saturating_sub(64);
        (n >> shift).to_f64().unwrap_or(f64::NAN).log2() + shift as f64
    };
    side(q.numer()) - side(q.denom())
}

/// `gcd(a, b) > 1` for the integers `a`, `b`.
pub fn shares_factor(a: &BigInt, b: &BigInt) -> bool {
    !a.gcd(b).is_one()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64, d: i64) -> Num {
        Num::Exact(BigRational::new(n.into(), d.into()))
    }

    #[test]
    fn exact_and_tiny_values_stay_apart() {
        assert!(!Num::int(1_000_000).equals(&Num::int(1_000_001)));
        let a = Num::int(2).pow(&Num::int(-99)).unwrap();
        let b = Num::int(2).pow(&Num::int(-98)).unwrap();
        assert!(!a.equals(&b));
        let r2 = Num::int(2).pow(&q(1, 2)).unwrap();
        assert!(!a.mul(&r2).unwrap().equals(&b.mul(&r2).unwrap()));
    }

    #[test]
    fn roots_powers_and_constants() {
        assert_eq!(Num::int(8).pow(&q(2, 3)).unwrap(), Num::int(4));
        assert_eq!(q(-27, 8).pow(&q(1, 3)).unwrap(), q(-3, 2));
        assert!(Num::int(-4).pow(&q(1, 2)).is_none());
        let r2 = Num::int(2).pow(&q(1, 2)).unwrap();
        assert!(r2.mul(&r2).unwrap().equals(&Num::int(2)));
        let pi = Num::pi();
        let s = pi.div(&Num::int(6)).unwrap().trig(Trig::Sin).unwrap();
        assert!(s.equals(&q(1, 2)));
        assert!(Num::e().ln().unwrap().equals(&Num::int(1)));
        assert!(Num::int(10).pow(&Num::int(100_000)).is_none());
        assert_eq!(Num::int(8).log(&Num::int(2)).unwrap(), Num::int(3));
        assert_eq!(q(1, 8).log(&Num::int(2)).unwrap(), Num::int(-3));
        assert_eq!(q(9, 4).log(&q(2, 3)).unwrap(), Num::int(-2));
        let big = Num::int(3).pow(&Num::int(5000)).unwrap();
        assert_eq!(big.log(&Num::int(3)).unwrap(), Num::int(5000));
        // not a power: an approximation, quickly (log₃ 1000! once took a second)
        let t = std::time::Instant::now();
        let f = Num::int(1000).factorial().unwrap();
        assert!(!f.log(&Num::int(3)).unwrap().is_exact());
        assert!(t.elapsed() < std::time::Duration::from_millis(100));
        let f = Num::int(20).factorial().unwrap();
        assert_eq!(f, Num::int(2_432_902_008_176_640_000));
        assert!(Num::int(100_000).factorial().is_none());
        assert_eq!(Num::int(10).binomial(&Num::int(3)).unwrap(), Num::int(120));
        // 3.14159 is not π.
        assert!(!pi.equals(&q(314_159, 100_000)));
    }
}
