//! The NTT driver: plans the passes of kernels/cuda/ntt.cuh (see its header for the
//! decomposition), keeps the root tables and coset/scale tables on the device, and runs
//!
//! - `ntt`: natural order in and out (DIF passes, then a bit-reversal kernel; a single-pass
//!   size stores bit-reversed rows directly). Forward cosets scale at the first pass's load,
//!   inverse transforms scale by `g^-i / n` at the last pass's store.
//! - `interpolate_then_evaluate_on_coset`: the prover's iNTT followed by a forward NTT on a
//!   coset, with no bit reversal at all: DIF passes with inverse roots (natural → bit-reversed
//!   coefficients), one fused pass that finishes the inverse, scales coefficient i by
//!   `g^i / n` and starts the forward DIT transform, then DIT passes (bit-reversed →
//!   natural). Up to three vectors per launch.
//! - `mul_sub`: a = a·b − c.
//!
//! Written against [`Exec`], so the tests run it unchanged on the SIMT emulator. Launches are
//! not synchronised here: an execution error surfaces at the next synchronising call
//! (download, MSM result), as for every kernel of the backend.

use std::sync::{Arc, Mutex};

use ark_ff::{FftField, Field, One, Zero};

use super::exec::{DevBuf, DevPtr, Exec, KernelArg, LaunchDims};
use super::ffi::fr_slice_as_bytes;
use crate::backend::{BackendError, NttDirection};
use crate::curve::Fr;

/// log2 of the largest transform: BN254 Fr has two-adicity 28.
pub const MAX_NTT_LOG2: u32 = 28;
/// Vectors one launch transforms (NTT_MAX_BATCH in ntt.cuh).
const MAX_BATCH: usize = 3;
/// Root tables (NTT_ROOT_LO_BITS): w^e = HI[e >> 12]·LO[e & (2^12 − 1)]; HI has 2^16 entries
/// (2 MiB), so every root of order ≤ 2^16 is one HI entry.
const ROOT_LO_BITS: u32 = 12;
/// The largest tile (NTT_MAX_TILE_LOG): 2^10 elements plus 2^9 twiddles = 48 KiB of shared
/// memory, the most a launch gets without opting in to more.
pub(crate) const MAX_TILE_LOG: u32 = 10;
/// Bit-reversal tiles are 2^4 x 2^4 (NTT_BITREV_SIDE_LOG); smaller vectors use one block.
const BITREV_SIDE_LOG: u32 = 4;
const BITREV_THREADS: u32 = 1 << (2 * BITREV_SIDE_LOG);
/// Threads per block of the element-wise kernel, and blocks per SM of its grid-stride loop.
const ELEMENTWISE_THREADS: u32 = 256;
const ELEMENTWISE_BLOCKS_PER_SM: u32 = 8;
/// Scale tables kept on the device: a prover uses one (ω_2n, 1/n) per domain size; the
/// standalone transforms a few more.
const MAX_CACHED_SCALE_TABLES: usize = 8;
const FR_BYTES: usize = 32;

// ntt_pass_t.flags (ntt.cuh)
const TWIST_LOAD: u32 = 1;
const TWIST_STORE: u32 = 2;
const SCALE_LOAD: u32 = 4;
const SCALE_BITREV: u32 = 8;
const STORE_BITREV: u32 = 16;
const SCALE_CONST: u32 = 32;

/// One pass: 2^stages-point DFTs over the columns of sub-blocks of 2^log_sub elements,
/// tiles of 2^stages rows x 2^log_cols columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PassShape {
    pub log_sub: u32,
    pub stages: u32,
    pub log_cols: u32,
    /// Tiles (blocks) per vector.
    pub tiles: u32,
}

impl PassShape {
    /// Bits below the pass's rows: the columns of one sub-block.
    #[cfg(test)]
    pub fn log_below(&self) -> u32 {
        self.log_sub - self.stages
    }
    pub fn tile_elems(&self) -> u32 {
        1 << (self.stages + self.log_cols)
    }
    pub fn threads(&self) -> u32 {
        self.tile_elems() / 2
    }
    /// The tile plus its 2^(stages-1) twiddles.
    pub fn shared_bytes(&self) -> u32 {
        (self.tile_elems() + (1 << (self.stages - 1))) * FR_BYTES as u32
    }
}

/// The DIF passes of a 2^log_n transform with tiles of at most 2^tile_log elements, in
/// execution order (the DIT passes are the same shapes in reverse). Non-final passes take at
/// most tile_log − 2 stages so their tiles have at least 4 adjacent columns (128-byte runs);
/// the final pass (contiguous sub-blocks) takes up to tile_log. Stage counts are balanced.
pub(crate) fn plan_passes(log_n: u32, tile_log: u32) -> Vec<PassShape> {
    assert!(
        (1..=MAX_NTT_LOG2).contains(&log_n),
        "ntt size 2^{log_n} out of range"
    );
    assert!(
        (3..=MAX_TILE_LOG).contains(&tile_log),
        "tile log {tile_log} out of range"
    );
    let max_final = tile_log;
    let max_other = tile_log - 2;
    let passes = if log_n <= max_final {
        1
    } else {
        1 + (log_n - max_final).div_ceil(max_other)
    };
    let mut stages = vec![log_n / passes; passes as usize];
    let last = stages.len() - 1;
    for i in 0..(log_n % passes) as usize {
        stages[last - i] += 1;
    }
    let mut excess = 0;
    for s in &mut stages[..last] {
        if *s > max_other {
            excess += *s - max_other;
            *s = max_other;
        }
    }
    stages[last] += excess;
    assert!(
        stages[last] <= max_final && stages.iter().all(|&s| s >= 1),
        "bad plan {stages:?} for 2^{log_n}"
    );
    let mut log_sub = log_n;
    let mut out = Vec::with_capacity(stages.len());
    for &s in &stages {
        let below = log_sub - s;
        // columns per tile: fill the tile, but within one sub-block when B > 0
        let mut log_cols = (tile_log - s).min(log_n - s);
        if below > 0 {
            log_cols = log_cols.min(below);
        }
        out.push(PassShape {
            log_sub,
            stages: s,
            log_cols,
            tiles: 1 << (log_n - s - log_cols),
        });
        log_sub = below;
    }
    debug_assert_eq!(log_sub, 0);
    out
}

/// `ntt_pass_t` of ntt.cuh, field for field.
#[derive(Clone, Copy, Debug, Default)]
struct PassArgs {
    roots_hi: [DevPtr; 2],
    roots_lo: [DevPtr; 2],
    scale_hi: DevPtr,
    scale_lo: DevPtr,
    data: [DevPtr; MAX_BATCH],
    tiles_per_vector: u32,
    log_sub: u32,
    log_stages: u32,
    log_cols: u32,
    log_n: u32,
    scale_lo_bits: u32,
    flags: u32,
}

/// sizeof(ntt_pass_t), checked by a static_assert in ntt.cuh.
const PASS_ARGS_BYTES: usize = 104;

impl PassArgs {
    fn to_bytes(self) -> Vec<u8> {
        let mut b = Vec::with_capacity(PASS_ARGS_BYTES);
        for p in self
            .roots_hi
            .iter()
            .chain(&self.roots_lo)
            .chain([&self.scale_hi, &self.scale_lo])
            .chain(&self.data)
        {
            b.extend_from_slice(&p.to_le_bytes());
        }
        for v in [
            self.tiles_per_vector,
            self.log_sub,
            self.log_stages,
            self.log_cols,
            self.log_n,
            self.scale_lo_bits,
            self.flags,
            0,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(b.len(), PASS_ARGS_BYTES);
        b
    }
}

/// w^e for e < 2^28 as HI[e >> 12]·LO[e & (2^12 − 1)], for w = ω_{2^28} and w^-1.
struct RootTables {
    forward: [DevBuf; 2],
    inverse: [DevBuf; 2],
}

impl RootTables {
    fn build(exec: &Arc<dyn Exec>) -> Result<RootTables, BackendError> {
        let w = Fr::get_root_of_unity(1u64 << MAX_NTT_LOG2).expect("BN254 Fr has 2-adicity 28");
        let w_inv = w.inverse().expect("roots of unity are invertible");
        let upload = |base: Fr| -> Result<[DevBuf; 2], BackendError> {
            let lo = powers(Fr::one(), base, 1 << ROOT_LO_BITS);
            let hi = powers(
                Fr::one(),
                base.pow([1u64 << ROOT_LO_BITS]),
                1 << (MAX_NTT_LOG2 - ROOT_LO_BITS),
            );
            Ok([upload_fr(exec, &hi)?, upload_fr(exec, &lo)?])
        };
        Ok(RootTables {
            forward: upload(w)?,
            inverse: upload(w_inv)?,
        })
    }

    fn get(&self, direction: NttDirection) -> (DevPtr, DevPtr) {
        let t = match direction {
            NttDirection::Forward => &self.forward,
            NttDirection::Inverse => &self.inverse,
        };
        (t[0].ptr(), t[1].ptr())
    }
}

/// T(i) = c·g^i for i < 2^log_n as HI[i >> lo_bits]·LO[i & mask] (c folded into HI), or the
/// constant c when g = 1.
struct ScaleTable {
    hi: DevBuf,
    lo: Option<DevBuf>,
    lo_bits: u32,
}

impl ScaleTable {
    fn build(exec: &Arc<dyn Exec>, g: Fr, c: Fr, log_n: u32) -> Result<ScaleTable, BackendError> {
        if g.is_one() {
            return Ok(ScaleTable {
                hi: upload_fr(exec, &[c])?,
                lo: None,
                lo_bits: 0,
            });
        }
        let lo_bits = log_n.div_ceil(2);
        let lo = powers(Fr::one(), g, 1 << lo_bits);
        let hi = powers(c, g.pow([1u64 << lo_bits]), 1 << (log_n - lo_bits));
        Ok(ScaleTable {
            hi: upload_fr(exec, &hi)?,
            lo: Some(upload_fr(exec, &lo)?),
            lo_bits,
        })
    }

    fn apply(&self, args: &mut PassArgs, flag: u32) {
        args.scale_hi = self.hi.ptr();
        args.scale_lo = self.lo.as_ref().map_or(0, DevBuf::ptr);
        args.scale_lo_bits = self.lo_bits;
        args.flags |= flag | if self.lo.is_none() { SCALE_CONST } else { 0 };
    }
}

/// start, start·g, start·g², … (len values).
fn powers(start: Fr, g: Fr, len: usize) -> Vec<Fr> {
    let mut out = Vec::with_capacity(len);
    let mut x = start;
    for _ in 0..len {
        out.push(x);
        x *= g;
    }
    out
}

fn upload_fr(exec: &Arc<dyn Exec>, values: &[Fr]) -> Result<DevBuf, BackendError> {
    let bytes = fr_slice_as_bytes(values);
    let buf = DevBuf::new(exec, bytes.len())?;
    exec.upload(buf.ptr(), bytes)?;
    Ok(buf)
}

/// (g, c, log_n) of a scale table, as Montgomery limbs.
type ScaleKey = ([u64; 4], [u64; 4], u32);

/// Checks an NTT length; returns log2.
pub(crate) fn ntt_log2(len: usize) -> Result<u32, BackendError> {
    if len < 2 || !len.is_power_of_two() || len.trailing_zeros() > MAX_NTT_LOG2 {
        return Err(BackendError::InvalidInput(format!(
            "ntt length must be a power of two from 2 to 2^{MAX_NTT_LOG2} (BN254 Fr has 2-adicity \
             {MAX_NTT_LOG2}), got {len}"
        )));
    }
    Ok(len.trailing_zeros())
}

/// Runs NTTs on one device (one stream); callers serialise calls.
pub(crate) struct NttEngine {
    exec: Arc<dyn Exec>,
    tile_log: u32,
    roots: Mutex<Option<Arc<RootTables>>>,
    scales: Mutex<Vec<(ScaleKey, Arc<ScaleTable>)>>,
}

impl NttEngine {
    pub fn new(exec: Arc<dyn Exec>) -> NttEngine {
        NttEngine::with_tile_log(exec, MAX_TILE_LOG)
    }

    /// Smaller tiles give more passes per size: the tests use them to reach every pass
    /// structure at sizes the emulator runs quickly.
    pub fn with_tile_log(exec: Arc<dyn Exec>, tile_log: u32) -> NttEngine {
        assert!((3..=MAX_TILE_LOG).contains(&tile_log));
        NttEngine {
            exec,
            tile_log,
            roots: Mutex::new(None),
            scales: Mutex::new(Vec::new()),
        }
    }

    fn roots(&self) -> Result<Arc<RootTables>, BackendError> {
        let mut slot = self.roots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let r = Arc::new(RootTables::build(&self.exec)?);
        *slot = Some(r.clone());
        Ok(r)
    }

    fn scale_table(&self, g: Fr, c: Fr, log_n: u32) -> Result<Arc<ScaleTable>, BackendError> {
        let key: ScaleKey = (g.0 .0, c.0 .0, log_n);
        let mut cache = self.scales.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = cache.iter().position(|(k, _)| *k == key) {
            let entry = cache.remove(i);
            let table = entry.1.clone();
            cache.push(entry); // most recently used last
            return Ok(table);
        }
        let table = Arc::new(ScaleTable::build(&self.exec, g, c, log_n)?);
        cache.push((key, table.clone()));
        if cache.len() > MAX_CACHED_SCALE_TABLES {
            cache.remove(0);
        }
        Ok(table)
    }

    /// The passes of a 2^log_n transform (for benchmarks and reports).
    pub fn plan(&self, log_n: u32) -> Vec<PassShape> {
        plan_passes(log_n, self.tile_log)
    }

    fn launch_pass(
        &self,
        kernel: &str,
        shape: &PassShape,
        mut args: PassArgs,
        data: &[DevPtr],
    ) -> Result<(), BackendError> {
        assert!(!data.is_empty() && data.len() <= MAX_BATCH);
        args.data = [0; MAX_BATCH];
        args.data[..data.len()].copy_from_slice(data);
        args.tiles_per_vector = shape.tiles;
        args.log_sub = shape.log_sub;
        args.log_stages = shape.stages;
        args.log_cols = shape.log_cols;
        let grid = u64::from(shape.tiles) * data.len() as u64;
        assert!(grid < 1 << 31, "grid of {grid} blocks");
        let dims = LaunchDims {
            grid: grid as u32,
            block: shape.threads(),
            shared_bytes: shape.shared_bytes(),
        };
        self.exec
            .launch(kernel, dims, &[KernelArg::Bytes(args.to_bytes())])
    }

    /// In-place NTT of `len` Fr at `data`, natural order in and out; with a coset g the
    /// forward transform evaluates on g·⟨ω⟩ and the inverse interpolates from it.
    pub fn ntt(
        &self,
        data: DevPtr,
        len: usize,
        direction: NttDirection,
        coset: Option<Fr>,
    ) -> Result<(), BackendError> {
        let log_n = ntt_log2(len)?;
        if coset.is_some_and(|g| g.is_zero()) {
            return Err(BackendError::InvalidInput(
                "ntt coset offset must be non-zero".into(),
            ));
        }
        let roots = self.roots()?;
        let passes = self.plan(log_n);
        let (hi, lo) = roots.get(direction);
        let base = PassArgs {
            roots_hi: [hi, hi],
            roots_lo: [lo, lo],
            log_n,
            ..PassArgs::default()
        };
        let scale = match (direction, coset) {
            (NttDirection::Forward, None) => None,
            (NttDirection::Forward, Some(g)) => {
                Some((self.scale_table(g, Fr::one(), log_n)?, SCALE_LOAD))
            }
            (NttDirection::Inverse, g) => {
                let g_inv = g.map_or(Fr::one(), |g| g.inverse().expect("non-zero offset"));
                let n_inv = Fr::from(len as u64).inverse().expect("n < r");
                Some((self.scale_table(g_inv, n_inv, log_n)?, SCALE_BITREV))
            }
        };
        let last = passes.len() - 1;
        for (i, shape) in passes.iter().enumerate() {
            let mut args = base;
            if i < last {
                args.flags |= TWIST_STORE;
            } else if last == 0 {
                args.flags |= STORE_BITREV;
            }
            if let Some((table, flag)) = &scale {
                let here = if *flag == SCALE_LOAD {
                    i == 0
                } else {
                    i == last
                };
                if here {
                    table.apply(&mut args, *flag);
                }
            }
            self.launch_pass("ntt_dif_pass", shape, args, &[data])?;
        }
        if last > 0 {
            self.bit_reverse(data, log_n)?;
        }
        Ok(())
    }

    /// For each vector: the inverse NTT (values on ⟨ω⟩ → coefficients), then the forward NTT
    /// on the coset g·⟨ω⟩. Natural order in and out; bit for bit what `ntt` gives in two calls.
    pub fn interpolate_then_evaluate_on_coset(
        &self,
        vectors: &[DevPtr],
        len: usize,
        coset: Fr,
    ) -> Result<(), BackendError> {
        let log_n = ntt_log2(len)?;
        if coset.is_zero() {
            return Err(BackendError::InvalidInput(
                "ntt coset offset must be non-zero".into(),
            ));
        }
        let roots = self.roots()?;
        let passes = self.plan(log_n);
        let n_inv = Fr::from(len as u64).inverse().expect("n < r");
        let scale = self.scale_table(coset, n_inv, log_n)?;
        let (ihi, ilo) = roots.get(NttDirection::Inverse);
        let (fhi, flo) = roots.get(NttDirection::Forward);
        let inverse = PassArgs {
            roots_hi: [ihi, fhi],
            roots_lo: [ilo, flo],
            log_n,
            ..PassArgs::default()
        };
        let forward = PassArgs {
            roots_hi: [fhi, fhi],
            roots_lo: [flo, flo],
            log_n,
            ..PassArgs::default()
        };
        let last = passes.len() - 1;
        for batch in vectors.chunks(MAX_BATCH) {
            for shape in &passes[..last] {
                self.launch_pass(
                    "ntt_dif_pass",
                    shape,
                    PassArgs {
                        flags: TWIST_STORE,
                        ..inverse
                    },
                    batch,
                )?;
            }
            let mut fused = inverse;
            scale.apply(&mut fused, SCALE_BITREV);
            self.launch_pass("ntt_dif_dit_pass", &passes[last], fused, batch)?;
            for shape in passes[..last].iter().rev() {
                self.launch_pass(
                    "ntt_dit_pass",
                    shape,
                    PassArgs {
                        flags: TWIST_LOAD,
                        ..forward
                    },
                    batch,
                )?;
            }
        }
        Ok(())
    }

    /// In-place bit-reversal permutation of 2^log_n elements.
    fn bit_reverse(&self, data: DevPtr, log_n: u32) -> Result<(), BackendError> {
        let side = BITREV_SIDE_LOG;
        if log_n < 2 * side {
            let dims = LaunchDims {
                grid: 1,
                block: BITREV_THREADS,
                shared_bytes: (FR_BYTES << log_n) as u32,
            };
            return self.exec.launch(
                "ntt_bitrev_small",
                dims,
                &[KernelArg::Ptr(data), KernelArg::U32(log_n)],
            );
        }
        let dims = LaunchDims {
            grid: 1 << (log_n - 2 * side),
            block: BITREV_THREADS,
            shared_bytes: 2 * BITREV_THREADS * FR_BYTES as u32,
        };
        self.exec.launch(
            "ntt_bitrev",
            dims,
            &[KernelArg::Ptr(data), KernelArg::U32(log_n)],
        )
    }

    /// a[i] = a[i]·b[i] − c[i] for i < len.
    pub fn mul_sub(&self, a: DevPtr, b: DevPtr, c: DevPtr, len: usize) -> Result<(), BackendError> {
        if len == 0 {
            return Ok(());
        }
        let n = u32::try_from(len).map_err(|_| {
            BackendError::InvalidInput(format!(
                "mul_sub_assign of {len} elements exceeds the kernel's 2^32 limit"
            ))
        })?;
        let limits = self.exec.limits();
        let max_blocks = u64::from(limits.sm_count * ELEMENTWISE_BLOCKS_PER_SM);
        let blocks = u64::from(n)
            .div_ceil(u64::from(ELEMENTWISE_THREADS))
            .min(max_blocks)
            .max(1);
        let dims = LaunchDims {
            grid: blocks as u32,
            block: ELEMENTWISE_THREADS,
            shared_bytes: 0,
        };
        self.exec.launch(
            "fr_mul_sub",
            dims,
            &[
                KernelArg::Ptr(a),
                KernelArg::Ptr(b),
                KernelArg::Ptr(c),
                KernelArg::U32(n),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_every_size_with_bounded_passes() {
        for tile_log in 3..=MAX_TILE_LOG {
            for log_n in 1..=MAX_NTT_LOG2 {
                let plan = plan_passes(log_n, tile_log);
                assert_eq!(plan.iter().map(|p| p.stages).sum::<u32>(), log_n);
                let last = plan.len() - 1;
                let mut log_sub = log_n;
                for (i, p) in plan.iter().enumerate() {
                    assert_eq!(p.log_sub, log_sub, "{log_n} {tile_log} {plan:?}");
                    log_sub -= p.stages;
                    assert!(p.stages + p.log_cols <= tile_log);
                    assert!(p.stages <= if i == last { tile_log } else { tile_log - 2 });
                    // the tiles of one launch cover the vector exactly once
                    assert_eq!(u64::from(p.tiles) << (p.stages + p.log_cols), 1u64 << log_n);
                    if p.log_below() > 0 {
                        assert!(
                            p.log_cols <= p.log_below(),
                            "columns cross a sub-block: {plan:?}"
                        );
                    }
                    assert!(p.shared_bytes() <= 48 * 1024);
                }
                assert_eq!(plan[last].log_below(), 0);
            }
        }
    }

    #[test]
    fn production_plans_are_coalesced_and_short() {
        let stages = |k| {
            plan_passes(k, MAX_TILE_LOG)
                .iter()
                .map(|p| p.stages)
                .collect::<Vec<_>>()
        };
        assert_eq!(stages(10), vec![10]);
        assert_eq!(stages(16), vec![8, 8]);
        assert_eq!(stages(20), vec![6, 7, 7]);
        assert_eq!(stages(24), vec![8, 8, 8]);
        assert_eq!(stages(26), vec![8, 8, 10]);
        assert_eq!(stages(28), vec![7, 7, 7, 7]);
        for k in 11..=MAX_NTT_LOG2 {
            for p in plan_passes(k, MAX_TILE_LOG) {
                if p.log_below() > 0 {
                    assert!(p.log_cols >= 2, "2^{k}: runs under 128 bytes: {p:?}");
                }
                assert_eq!(
                    p.tile_elems(),
                    1 << MAX_TILE_LOG,
                    "2^{k}: partial tiles {p:?}"
                );
            }
        }
    }

    #[test]
    fn pass_args_layout_matches_the_kernel_struct() {
        let args = PassArgs {
            data: [1, 2, 3],
            flags: 0x55,
            ..PassArgs::default()
        };
        let b = args.to_bytes();
        assert_eq!(b.len(), PASS_ARGS_BYTES);
        assert_eq!(&b[48..56], &1u64.to_le_bytes());
        assert_eq!(&b[64..72], &3u64.to_le_bytes());
        assert_eq!(&b[96..100], &0x55u32.to_le_bytes());
    }

    #[test]
    fn lengths_outside_the_two_adic_range_are_refused() {
        for len in [0usize, 1, 3, 6, 1 << 29, (1 << 20) + 1] {
            assert!(
                matches!(ntt_log2(len), Err(BackendError::InvalidInput(_))),
                "{len}"
            );
        }
        assert_eq!(ntt_log2(2).unwrap(), 1);
        assert_eq!(ntt_log2(1 << 28).unwrap(), 28);
    }

    /// The tables assume arkworks' ω_n is ω_{2^28}^(2^(28−k)) for every k.
    #[test]
    fn arkworks_roots_are_powers_of_the_2_28_root() {
        let w = Fr::get_root_of_unity(1 << 28).unwrap();
        let mut x = w;
        for k in (1..=28u32).rev() {
            assert_eq!(Fr::get_root_of_unity(1u64 << k).unwrap(), x, "k={k}");
            x.square_in_place();
        }
    }
}
