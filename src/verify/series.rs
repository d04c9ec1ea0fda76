//! High-precision evaluation of the irrational functions the verifier needs — r-th roots,
//! `e^x`, `ln x`, π, sine and cosine — on rationals rounded to a fixed mantissa
//! ([`PREC`](super::real) bits) after every step, by classic series.

use std::sync::OnceLock;

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed};

use super::real::{int, pow2, round, PREC};

/// The real `r`-th root of `x > 0` to [`PREC`] bits.
pub(super) fn nth_root(x: &BigRational, r: u32) -> Option<BigRational> {
    let e = x.numer().bits() as i64 - x.denom().bits() as i64;
    // Scale so that the integer root has about PREC bits: x * 2^(r*k), root / 2^k.
    let k = PREC as i64 - e / r as i64 + 2;
    let shift = k * r as i64;
    let scaled = if shift >= 0 {
        (x.numer() << shift as u64) / x.denom()
    } else {
        x.numer() / (x.denom() << (-shift) as u64)
    };
    let root = scaled.nth_root(r);
    let q = if k >= 0 {
        BigRational::new(root, pow2(k as u64))
    } else {
        BigRational::from_integer(root << (-k) as u64)
    };
    round(q)
}

pub(super) fn eps() -> BigRational {
    BigRational::new(BigInt::one(), pow2(PREC + 16))
}

/// `e^x` by halving, a Taylor series and squaring back.
pub(super) fn exp(x: &BigRational) -> Option<BigRational> {
    if x.abs() > int(10_000) {
        return None;
    }
    let mut halvings = 0u64;
    let mut y = x.clone();
    let small = BigRational::new(BigInt::one(), pow2(8));
    while y.abs() > small {
        y /= int(2);
        halvings += 1;
    }
    let y = round(y)?;
    let (mut sum, mut term) = (int(1), int(1));
    let eps = eps();
    for n in 1..400 {
        term = round(&term * &y / int(n))?;
        sum += &term;
        if term.abs() < eps {
            break;
        }
    }
    let mut r = round(sum)?;
    for _ in 0..halvings {
        r = round(&r * &r)?;
    }
    Some(r)
}

/// `2 atanh(t) = ln((1+t)/(1-t))` for `|t| <= 1/3`.
pub(super) fn atanh2(t: &BigRational) -> Option<BigRational> {
    let t2 = round(t * t)?;
    let (mut sum, mut pow) = (t.clone(), t.clone());
    let eps = eps();
    for n in 1..800 {
        pow = round(&pow * &t2)?;
        let term = &pow / int(2 * n + 1);
        sum += &term;
        if term.abs() < eps {
            break;
        }
    }
    round(sum * int(2))
}

pub(super) fn ln2() -> &'static BigRational {
    static LN2: OnceLock<BigRational> = OnceLock::new();
    LN2.get_or_init(|| atanh2(&BigRational::new(1.into(), 3.into())).unwrap_or_else(|| int(0)))
}

/// Natural logarithm of `x > 0`: `x = m 2^k` with `m` in [1/2, 1), then `ln m` by atanh.
pub(super) fn ln(x: &BigRational) -> Option<BigRational> {
    let k = x.numer().bits() as i64 - x.denom().bits() as i64;
    let m = if k >= 0 {
        x / BigRational::from_integer(pow2(k as u64))
    } else {
        x * BigRational::from_integer(pow2((-k) as u64))
    };
    // m is in [1/4, 2); bring it to [1/2, 1) or (1/2, 2) — atanh converges for all of it.
    let t = (&m - int(1)) / (&m + int(1));
    let lm = atanh2(&round(t)?)?;
    round(lm + ln2() * int(k))
}

/// `arctan(1/n)` for an integer `n >= 2`.
pub(super) fn atan_inv(n: i64) -> BigRational {
    let x = BigRational::new(1.into(), n.into());
    let x2 = &x * &x;
    let (mut sum, mut pow) = (x.clone(), x);
    let eps = eps();
    for k in 1..1000 {
        pow = round(&pow * &x2).unwrap_or_else(|| int(0));
        let term = &pow / int(2 * k + 1);
        if k % 2 == 1 {
            sum -= &term;
        } else {
            sum += &term;
        }
        if term.abs() < eps {
            break;
        }
    }
    sum
}

pub(super) fn pi() -> &'static BigRational {
    static PI: OnceLock<BigRational> = OnceLock::new();
    PI.get_or_init(|| {
        let pi = atan_inv(5) * int(16) - atan_inv(239) * int(4);
        round(pi).unwrap_or_else(|| int(0))
    })
}

/// `(sin x, cos x)`: reduce modulo 2π, then Taylor series.
pub(super) fn sin_cos(x: &BigRational) -> Option<(BigRational, BigRational)> {
    let two_pi = pi() * int(2);
    let turns = (x / &two_pi).round();
    let y = round(x - two_pi * turns)?;
    let y2 = round(&y * &y)?;
    let eps = eps();
    let (mut s, mut ts) = (y.clone(), y.clone());
    let (mut c, mut tc) = (int(1), int(1));
    for n in 1..400i64 {
        ts = round(-&ts * &y2 / int((2 * n) * (2 * n + 1)))?;
        tc = round(-&tc * &y2 / int((2 * n - 1) * (2 * n)))?;
        s += &ts;
        c += &tc;
        if ts.abs() < eps && tc.abs() < eps {
            break;
        }
    }
    Some((round(s)?, round(c)?))
}
