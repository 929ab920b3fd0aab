//! One decoder for arrays of curve points in any byte encoding: our canonical key bytes
//! (arkworks uncompressed) and snarkjs zkeys (Montgomery coordinates, zero bytes for infinity)
//! differ only in how one point's coordinates are read. The parallel pass over the array, the
//! on-curve and subgroup checks [`PointCheck`] asks for, and the index of the first bad point
//! are the same, and live here.

use ark_ec::short_weierstrass::{Affine, SWCurveConfig};
use rayon::prelude::*;

use crate::groth16::key::PointCheck;

/// The point types keys hold (G1 and G2 affine), with the checks [`PointCheck`] names.
pub trait CheckedPoint: Send + Sync + Sized {
    fn on_curve(&self) -> bool;
    fn in_subgroup(&self) -> bool;
}

impl<P: SWCurveConfig> CheckedPoint for Affine<P> {
    fn on_curve(&self) -> bool {
        self.is_on_curve()
    }
    fn in_subgroup(&self) -> bool {
        self.is_in_correct_subgroup_assuming_on_curve()
    }
}

/// A point that failed to decode or a check: its index in the array and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadPoint {
    pub index: usize,
    pub reason: &'static str,
}

/// Decodes `bytes` as consecutive `size`-byte points with `decode` (coordinates only), in
/// parallel, then checks each as `check` asks. `bytes.len()` must be a multiple of `size`.
pub fn decode_points<P, D>(
    bytes: &[u8],
    size: usize,
    check: PointCheck,
    decode: D,
) -> Result<Vec<P>, BadPoint>
where
    P: CheckedPoint,
    D: Fn(&[u8]) -> Result<P, &'static str> + Sync,
{
    debug_assert_eq!(bytes.len() % size, 0, "whole points only");
    bytes
        .par_chunks_exact(size)
        .enumerate()
        .map(|(index, chunk)| {
            let p = decode(chunk).map_err(|reason| BadPoint { index, reason })?;
            check_point(&p, check).map_err(|reason| BadPoint { index, reason })?;
            Ok(p)
        })
        .collect()
}

/// The checks `check` asks for on one decoded point.
pub fn check_point<P: CheckedPoint>(p: &P, check: PointCheck) -> Result<(), &'static str> {
    if check == PointCheck::None {
        return Ok(());
    }
    if !p.on_curve() {
        return Err("not on the curve");
    }
    if check == PointCheck::Full && !p.in_subgroup() {
        return Err("not in the prime-order subgroup");
    }
    Ok(())
}
