//! The MSM driver: uploads and precomputes bases, then runs the kernel pipeline of
//! kernels/cuda/msm.cuh for each call and finishes the last few dozen group operations on
//! the host. Written against [`Exec`], so the tests run it unchanged on the SIMT emulator.

use std::sync::{Arc, Mutex};

use ark_ec::short_weierstrass::{Affine, Projective};
use ark_ec::AdditiveGroup;
use ark_ff::Zero;

use super::exec::{DevBuf, DevPtr, Exec, KernelArg, LaunchDims};
use super::layout::{affine_to_words, xyzz_to_projective, DeviceCurve, DeviceField};
use super::msm_plan::{
    choose_shape, chunk_len, MsmShape, MsmSizes, ACCUMULATE_THREADS_PER_BLOCK, COMBINE_FANIN,
    MAX_COPIES, MAX_REFS, MAX_WINDOW_BITS, MIN_WINDOW_BITS, POINT_KERNEL_BLOCK, ROW_CHUNK,
    SORT_THREADS,
};
use crate::backend::BackendError;

/// Share of free device memory one set of resident bases (all its copies) may take: a
/// Groth16 key keeps four G1 sets and one G2 set resident, and MSMs need working memory.
pub(crate) const BASES_MEMORY_FRACTION: f64 = 0.4;
/// Share of free device memory one MSM call's working buffers may take; larger calls are
/// split into chunks of scalars whose results are added.
pub(crate) const WORKING_MEMORY_FRACTION: f64 = 0.8;
/// Points per precomputation launch: bounds the (ZZ, ZZZ) scratch to 2^22 * 128 B.
const PRECOMPUTE_CHUNK_POINTS: u64 = 1 << 22;
/// Points normalised per thread (MSM_NORMALIZE_CHUNK in msm.cuh).
const NORMALIZE_CHUNK: u64 = 16;
/// Threads per block of the scan kernels (SCAN_THREADS) and values per tile (SCAN_TILE).
const SCAN_THREADS: u32 = 1024;
const SCAN_TILE: u64 = 4096;
/// Shared memory of block_exclusive_scan: 33 words, rounded up.
const SCAN_SHARED_BYTES: u32 = 256;
/// Bytes of one scalar on the device (Fr, 8 words).
const SCALAR_BYTES: u64 = 32;

/// Overrides of the automatic MSM shape (benchmarks and tuning on a GPU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsmTuning {
    /// Window bits c (2..=23) instead of the cost model's choice.
    pub window_bits: Option<u32>,
    /// At most this many precomputed base copies (1 = no precomputation).
    pub max_copies: Option<u32>,
}

/// Milliseconds per MSM phase, summed over chunks, in pipeline order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MsmProfile {
    pub phases_ms: Vec<(&'static str, f64)>,
}

impl MsmProfile {
    fn add(&mut self, name: &'static str, ms: f64) {
        match self.phases_ms.iter_mut().find(|(n, _)| *n == name) {
            Some((_, t)) => *t += ms,
            None => self.phases_ms.push((name, ms)),
        }
    }
}

/// Bases resident on the device: copy k of point i at index k * n + i.
pub(crate) struct ResidentBases {
    buf: Option<DevBuf>,
    n: usize,
    shape: MsmShape,
}

impl ResidentBases {
    pub fn shape(&self) -> MsmShape {
        self.shape
    }

    pub fn device_bytes(&self) -> usize {
        self.buf.as_ref().map_or(0, |b| b.len_bytes())
    }
}

/// Working sets kept between calls: allocating ~15 buffers (up to GiBs) per MSM would cost
/// milliseconds of cuMemAlloc/cuMemFree; a prover alternates a few sizes (G1 and G2 of one
/// key), so a handful of cached sets cover it.
const MAX_CACHED_WORKSPACES: usize = 4;

/// Runs MSMs on one device (one stream); callers serialise calls.
pub(crate) struct MsmEngine {
    exec: Arc<dyn Exec>,
    workspaces: Mutex<Vec<Workspace>>,
}

impl MsmEngine {
    pub fn new(exec: Arc<dyn Exec>) -> MsmEngine {
        MsmEngine {
            exec,
            workspaces: Mutex::new(Vec::new()),
        }
    }

    /// A workspace for `sizes`: a cached one, or a new one after dropping cached ones while
    /// memory is short.
    fn take_workspace(&self, sizes: &MsmSizes, xyzz: u64) -> Result<Workspace, BackendError> {
        let mut cache = self.workspaces.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = cache.iter().position(|w| w.fits(sizes, xyzz)) {
            return Ok(cache.swap_remove(i));
        }
        let needed = sizes.working_bytes(xyzz);
        while !cache.is_empty() && self.exec.free_memory_bytes()? < needed {
            cache.remove(0);
        }
        drop(cache);
        Workspace::new(&self.exec, sizes, xyzz)
    }

    fn return_workspace(&self, w: Workspace) {
        let mut cache = self.workspaces.lock().unwrap_or_else(|p| p.into_inner());
        cache.push(w);
        if cache.len() > MAX_CACHED_WORKSPACES {
            cache.remove(0);
        }
    }

    /// Frees the cached working sets (e.g. before loading a large proving key).
    pub fn release_workspaces(&self) {
        self.workspaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Uploads `points` and precomputes as many shifted copies as memory allows.
    pub fn load_bases<C: DeviceCurve>(
        &self,
        points: &[Affine<C::Config>],
    ) -> Result<ResidentBases, BackendError> {
        self.load_bases_tuned::<C>(points, MsmTuning::default())
    }

    /// `load_bases` with the window size and copy count forced (benchmarks, tuning).
    pub fn load_bases_tuned<C: DeviceCurve>(
        &self,
        points: &[Affine<C::Config>],
        tuning: MsmTuning,
    ) -> Result<ResidentBases, BackendError> {
        let n = points.len() as u64;
        if n == 0 {
            return Ok(ResidentBases {
                buf: None,
                n: 0,
                shape: choose_shape(0, 1),
            });
        }
        if n >= MAX_REFS {
            return Err(BackendError::InvalidInput(format!(
                "msm bases: {n} points exceed the kernels' 2^31 limit"
            )));
        }
        let point_bytes = C::AFFINE_BYTES as u64;
        // bases are long-lived: give them the memory cached working sets hold
        self.release_workspaces();
        let free = self.exec.free_memory_bytes()?;
        let budget = (free as f64 * BASES_MEMORY_FRACTION) as u64;
        let fit = budget / (n * point_bytes);
        if fit == 0 {
            return Err(BackendError::OutOfMemory {
                needed_bytes: n * point_bytes,
                free_bytes: free,
            });
        }
        let mut max_copies = fit.min(u64::from(MAX_COPIES)) as u32;
        if let Some(limit) = tuning.max_copies {
            max_copies = max_copies.min(limit.max(1));
        }
        let shape = match tuning.window_bits {
            None => choose_shape(n, max_copies),
            Some(c) if (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&c) => {
                let s = MsmShape::new(c, max_copies);
                if !s.valid() || u64::from(s.copies) * n >= MAX_REFS {
                    return Err(BackendError::InvalidInput(format!(
                        "window bits {c} with {max_copies} copies do not fit the sort or the 2^31 refs"
                    )));
                }
                s
            }
            Some(c) => {
                return Err(BackendError::InvalidInput(format!(
                    "window bits must be {MIN_WINDOW_BITS}..={MAX_WINDOW_BITS}, got {c}"
                )))
            }
        };
        let total = u64::from(shape.copies) * n * point_bytes;
        let buf = DevBuf::new(&self.exec, total as usize)?;
        let words = affine_to_words::<C>(points);
        self.exec.upload(buf.ptr(), words_as_bytes(&words))?;
        self.precompute::<C>(&buf, n, shape)?;
        self.exec.synchronize()?;
        tracing::debug!(
            curve = C::SUFFIX,
            points = n,
            c = shape.c,
            windows = shape.windows,
            copies = shape.copies,
            bytes = total,
            "msm bases resident"
        );
        Ok(ResidentBases {
            buf: Some(buf),
            n: n as usize,
            shape,
        })
    }

    fn precompute<C: DeviceCurve>(
        &self,
        buf: &DevBuf,
        n: u64,
        shape: MsmShape,
    ) -> Result<(), BackendError> {
        if shape.copies < 2 {
            return Ok(());
        }
        let field_bytes = 4 * C::Base::WORDS as u64;
        let chunk = n.min(PRECOMPUTE_CHUNK_POINTS);
        let scratch = DevBuf::new(&self.exec, (chunk * 2 * field_bytes) as usize)?;
        let double = format!("msm_precompute_double_{}", C::SUFFIX);
        let normalize = format!("msm_precompute_normalize_{}", C::SUFFIX);
        for k in 1..shape.copies {
            let mut first = 0u64;
            while first < n {
                let count = chunk.min(n - first);
                let common = [
                    buf.arg(),
                    KernelArg::U32(n as u32),
                    KernelArg::U32(first as u32),
                    KernelArg::U32(count as u32),
                    KernelArg::U32(k),
                ];
                let mut args = common.to_vec();
                args.push(KernelArg::U32(shape.copy_shift_bits()));
                args.push(scratch.arg());
                self.exec.launch(
                    &double,
                    LaunchDims::cover(count, POINT_KERNEL_BLOCK, 0),
                    &args,
                )?;
                let mut args = common.to_vec();
                args.push(scratch.arg());
                let threads = count.div_ceil(NORMALIZE_CHUNK);
                self.exec.launch(
                    &normalize,
                    LaunchDims::cover(threads, POINT_KERNEL_BLOCK, 0),
                    &args,
                )?;
                first += count;
            }
        }
        Ok(())
    }

    /// Σ scalars[i] · bases[i] for `len` Montgomery-form Fr scalars at `scalars` (device).
    pub fn msm<C: DeviceCurve>(
        &self,
        bases: &ResidentBases,
        scalars: DevPtr,
        len: usize,
    ) -> Result<Projective<C::Config>, BackendError> {
        self.msm_profiled::<C>(bases, scalars, len, None)
    }

    /// `msm`, and with `profile` the wall time of each phase (the device is synchronised
    /// between phases, which adds a little to the total).
    pub fn msm_profiled<C: DeviceCurve>(
        &self,
        bases: &ResidentBases,
        scalars: DevPtr,
        len: usize,
        mut profile: Option<&mut MsmProfile>,
    ) -> Result<Projective<C::Config>, BackendError> {
        if len != bases.n {
            return Err(BackendError::InvalidInput(format!(
                "msm needs one scalar per base: {} bases, {len} scalars",
                bases.n
            )));
        }
        let Some(base_buf) = bases.buf.as_ref() else {
            return Ok(Projective::zero());
        };
        let limits = self.exec.limits();
        let shape = bases.shape;
        let xyzz = C::XYZZ_BYTES as u64;
        let full = MsmSizes::new(
            len as u64,
            shape,
            limits.sm_count,
            limits.resident_threads_per_sm,
        );
        let cached = {
            let cache = self.workspaces.lock().unwrap_or_else(|p| p.into_inner());
            cache.iter().any(|w| w.fits(&full, xyzz))
        };
        // a cached working set for the whole call is memory already in hand
        let free = if cached {
            u64::MAX / 2
        } else {
            self.exec.free_memory_bytes()?
        };
        let budget = (free as f64 * WORKING_MEMORY_FRACTION) as u64;
        let sizes_for =
            |c: u64| MsmSizes::new(c, shape, limits.sm_count, limits.resident_threads_per_sm);
        let chunk = chunk_len(
            len as u64,
            shape,
            limits.sm_count,
            limits.resident_threads_per_sm,
            budget,
            xyzz,
        )
        .map_err(|needed| BackendError::OutOfMemory {
            needed_bytes: needed,
            free_bytes: free,
        })?;
        let mut total = Projective::<C::Config>::zero();
        let mut offset = 0u64;
        let mut work: Option<Workspace> = None;
        while offset < len as u64 {
            let this = chunk.min(len as u64 - offset);
            let sizes = sizes_for(this);
            if work.as_ref().is_none_or(|w| !w.fits(&sizes, xyzz)) {
                if let Some(old) = work.take() {
                    self.return_workspace(old);
                }
                work = Some(self.take_workspace(&sizes, xyzz)?);
            }
            let w = work.as_ref().expect("workspace allocated above");
            let part = self.msm_chunk::<C>(
                base_buf,
                bases.n as u64,
                scalars + offset * SCALAR_BYTES,
                offset,
                &sizes,
                w,
                profile.as_deref_mut(),
            );
            match part {
                Ok(p) => total += p,
                Err(e) => return Err(e), // a failed call's buffers are dropped, not cached
            }
            offset += this;
        }
        if let Some(w) = work {
            self.return_workspace(w);
        }
        Ok(total)
    }

    #[allow(clippy::too_many_arguments)]
    fn msm_chunk<C: DeviceCurve>(
        &self,
        bases: &DevBuf,
        stride: u64,
        scalars: DevPtr,
        point_offset: u64,
        z: &MsmSizes,
        w: &Workspace,
        mut profile: Option<&mut MsmProfile>,
    ) -> Result<Projective<C::Config>, BackendError> {
        let ex = &*self.exec;
        let mut clock = std::time::Instant::now();
        let mut phase = |name: &'static str| -> Result<(), BackendError> {
            if let Some(p) = profile.as_deref_mut() {
                ex.synchronize()?;
                p.add(name, clock.elapsed().as_secs_f64() * 1e3);
                clock = std::time::Instant::now();
            }
            Ok(())
        };
        let shape = z.shape;
        let plan = PlanRaw {
            n: z.len as u32,
            point_offset: point_offset as u32,
            c: shape.c,
            windows: shape.windows,
            group: shape.group,
            copy_stride: stride as u32,
            fine_bits: z.fine_bits,
            coarse_bins: z.coarse_bins,
            scalars_per_block: z.scalars_per_block,
            coarse_blocks: z.coarse_blocks,
        };
        let plan_arg = KernelArg::Bytes(plan.to_bytes());
        let coarse_len = z.coarse_counts_len();
        let item_count = w.coarse.at((coarse_len * 4) as usize);

        // 1-2. digits of every scalar, sorted by bucket key
        ex.launch(
            "msm_prepare_scalars",
            LaunchDims::cover(z.len, 256, 0),
            &[
                KernelArg::Ptr(scalars),
                KernelArg::U32(z.len as u32),
                w.prepared.arg(),
            ],
        )?;
        let coarse_shared = z.coarse_bins * 4;
        ex.launch(
            "msm_coarse_hist",
            LaunchDims {
                grid: z.coarse_blocks,
                block: SORT_THREADS,
                shared_bytes: coarse_shared,
            },
            &[w.prepared.arg(), plan_arg.clone(), w.coarse.arg()],
        )?;
        self.exclusive_scan(w.coarse.ptr(), coarse_len, &w.scan)?;
        ex.launch(
            "msm_coarse_scatter",
            LaunchDims {
                grid: z.coarse_blocks,
                block: SORT_THREADS,
                shared_bytes: coarse_shared,
            },
            &[
                w.prepared.arg(),
                plan_arg.clone(),
                w.coarse.arg(),
                w.items.arg(),
            ],
        )?;
        ex.launch(
            "msm_fine_plan",
            LaunchDims {
                grid: 1,
                block: 1024,
                shared_bytes: SCAN_SHARED_BYTES,
            },
            &[w.coarse.arg(), plan_arg.clone(), w.tile_start.arg()],
        )?;
        let fine_len = z.fine_hist_len();
        ex.zero(w.fine.ptr(), ((fine_len + 1) * 4) as usize)?;
        let fine_dims = LaunchDims {
            grid: u32::try_from(z.fine_tiles_max).expect("tile count below 2^32"),
            block: SORT_THREADS,
            shared_bytes: 4 << z.fine_bits,
        };
        ex.launch(
            "msm_fine_hist",
            fine_dims,
            &[
                w.items.arg(),
                w.coarse.arg(),
                plan_arg.clone(),
                w.tile_start.arg(),
                w.fine.arg(),
            ],
        )?;
        self.exclusive_scan(w.fine.ptr(), fine_len, &w.scan)?;
        ex.launch(
            "msm_fine_scatter",
            fine_dims,
            &[
                w.items.arg(),
                w.coarse.arg(),
                plan_arg,
                w.tile_start.arg(),
                w.fine.arg(),
                w.sorted.arg(),
            ],
        )?;

        phase("digits_and_sort")?;

        // 3. buckets: equal segments of sorted items per thread, then slot levels
        let xyzz = C::XYZZ_BYTES as u64;
        ex.zero(w.buckets.ptr(), (shape.keys() * xyzz) as usize)?;
        let threads = z.accumulate_threads;
        ex.launch(
            &format!("msm_accumulate_{}", C::SUFFIX),
            LaunchDims::cover(u64::from(threads), ACCUMULATE_THREADS_PER_BLOCK, 0),
            &[
                w.sorted.arg(),
                KernelArg::Ptr(item_count),
                bases.arg(),
                KernelArg::U32(threads),
                w.buckets.arg(),
                w.slot_keys[0].arg(),
                w.slot_points[0].arg(),
            ],
        )?;
        phase("accumulate")?;
        let mut slots = 2 * u64::from(threads);
        let mut src = 0;
        if threads > 1 {
            loop {
                let next_threads = slots.div_ceil(COMBINE_FANIN);
                ex.launch(
                    &format!("msm_combine_slots_{}", C::SUFFIX),
                    LaunchDims::cover(next_threads, POINT_KERNEL_BLOCK, 0),
                    &[
                        w.slot_keys[src].arg(),
                        w.slot_points[src].arg(),
                        KernelArg::U32(slots as u32),
                        KernelArg::U32(next_threads as u32),
                        w.buckets.arg(),
                        w.slot_keys[1 - src].arg(),
                        w.slot_points[1 - src].arg(),
                    ],
                )?;
                src = 1 - src;
                if next_threads == 1 {
                    break;
                }
                slots = 2 * next_threads;
            }
        }

        phase("combine_slots")?;

        // 4. per window: sum_b (b+1) B_b as plain sums (rows) for the host
        let m = u64::from(shape.group);
        let segs = u64::from(z.segments);
        ex.launch(
            &format!("msm_bucket_sums_{}", C::SUFFIX),
            LaunchDims::cover(m * segs, POINT_KERNEL_BLOCK, 0),
            &[
                w.buckets.arg(),
                KernelArg::U32(shape.buckets_per_window() as u32),
                KernelArg::U32(shape.group),
                KernelArg::U32(z.buckets_per_thread),
                w.sums.arg(),
                w.running.arg(),
            ],
        )?;
        phase("bucket_running_sums")?;
        let rows = m * u64::from(z.rows);
        let mut len = u64::from(z.bit_sum_chunks());
        ex.launch(
            &format!("msm_bit_sums_{}", C::SUFFIX),
            LaunchDims::cover(rows * len, POINT_KERNEL_BLOCK, 0),
            &[
                w.sums.arg(),
                w.running.arg(),
                KernelArg::U32(z.segments),
                KernelArg::U32(shape.group),
                KernelArg::U32(z.rows),
                KernelArg::U32(ROW_CHUNK),
                w.rows[0].arg(),
            ],
        )?;
        let mut src = 0;
        while len > 1 {
            let out_len = len.div_ceil(u64::from(ROW_CHUNK));
            ex.launch(
                &format!("msm_row_sums_{}", C::SUFFIX),
                LaunchDims::cover(rows * out_len, POINT_KERNEL_BLOCK, 0),
                &[
                    w.rows[src].arg(),
                    KernelArg::U32(rows as u32),
                    KernelArg::U32(len as u32),
                    KernelArg::U32(ROW_CHUNK),
                    w.rows[1 - src].arg(),
                ],
            )?;
            src = 1 - src;
            len = out_len;
        }
        let mut words = vec![0u32; (rows as usize) * C::XYZZ_WORDS];
        ex.download(w.rows[src].ptr(), words_as_bytes_mut(&mut words))?;
        phase("row_sums_and_download")?;
        let result = finish::<C>(&words, z);
        phase("host_finish")?;
        Ok(result)
    }

    /// In-place exclusive scan of `len` u32 at `data`; data[len] = total.
    fn exclusive_scan(
        &self,
        data: DevPtr,
        len: u64,
        tile_sums: &DevBuf,
    ) -> Result<(), BackendError> {
        assert!(len < u64::from(u32::MAX), "scan of {len} values");
        let tiles = len.div_ceil(SCAN_TILE).max(1);
        let dims = LaunchDims {
            grid: tiles as u32,
            block: SCAN_THREADS,
            shared_bytes: SCAN_SHARED_BYTES,
        };
        self.exec.launch(
            "scan_tile_sums",
            dims,
            &[
                KernelArg::Ptr(data),
                KernelArg::U32(len as u32),
                tile_sums.arg(),
            ],
        )?;
        self.exec.launch(
            "scan_block_offsets",
            LaunchDims {
                grid: 1,
                block: SCAN_THREADS,
                shared_bytes: SCAN_SHARED_BYTES,
            },
            &[tile_sums.arg(), KernelArg::U32(tiles as u32)],
        )?;
        self.exec.launch(
            "scan_apply",
            dims,
            &[
                KernelArg::Ptr(data),
                KernelArg::U32(len as u32),
                tile_sums.arg(),
                KernelArg::U32(tiles as u32),
                KernelArg::Ptr(data),
            ],
        )
    }
}

/// f_m = S + G * sum_beta 2^beta Z_beta per window of the group, then
/// result = sum_m 2^(c*m) f_m (Horner).
fn finish<C: DeviceCurve>(words: &[u32], z: &MsmSizes) -> Projective<C::Config> {
    let xw = C::XYZZ_WORDS;
    let rows = z.rows as usize;
    let point = |i: usize| xyzz_to_projective::<C>(&words[i * xw..(i + 1) * xw]);
    let log_g = z.buckets_per_thread.trailing_zeros();
    let mut result = Projective::<C::Config>::zero();
    for m in (0..z.shape.group as usize).rev() {
        let base = m * rows;
        let mut weighted = Projective::<C::Config>::zero();
        for beta in (0..rows - 1).rev() {
            weighted.double_in_place();
            weighted += point(base + 1 + beta);
        }
        for _ in 0..log_g {
            weighted.double_in_place();
        }
        let f = point(base) + weighted;
        for _ in 0..z.shape.c {
            result.double_in_place();
        }
        result += f;
    }
    result
}

/// `msm_plan_t` in msm.cuh, field for field.
#[derive(Clone, Copy, Debug)]
struct PlanRaw {
    n: u32,
    point_offset: u32,
    c: u32,
    windows: u32,
    group: u32,
    copy_stride: u32,
    fine_bits: u32,
    coarse_bins: u32,
    scalars_per_block: u32,
    coarse_blocks: u32,
}

impl PlanRaw {
    fn to_bytes(self) -> Vec<u8> {
        [
            self.n,
            self.point_offset,
            self.c,
            self.windows,
            self.group,
            self.copy_stride,
            self.fine_bits,
            self.coarse_bins,
            self.scalars_per_block,
            self.coarse_blocks,
        ]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
    }
}

/// The working buffers of one MSM chunk, reused while chunks keep the same sizes.
struct Workspace {
    sizes: MsmSizes,
    xyzz: u64,
    prepared: DevBuf,
    coarse: DevBuf,
    scan: DevBuf,
    tile_start: DevBuf,
    fine: DevBuf,
    items: DevBuf,
    sorted: DevBuf,
    buckets: DevBuf,
    slot_keys: [DevBuf; 2],
    slot_points: [DevBuf; 2],
    sums: DevBuf,
    running: DevBuf,
    rows: [DevBuf; 2],
}

impl Workspace {
    fn new(exec: &Arc<dyn Exec>, z: &MsmSizes, xyzz: u64) -> Result<Workspace, BackendError> {
        let b = |bytes: u64| DevBuf::new(exec, bytes as usize);
        let scan_len = z.coarse_counts_len().max(z.fine_hist_len());
        let m = u64::from(z.shape.group);
        let threads = u64::from(z.accumulate_threads);
        let rows = m * u64::from(z.rows) * u64::from(z.bit_sum_chunks());
        Ok(Workspace {
            sizes: *z,
            xyzz,
            prepared: b(z.len * SCALAR_BYTES)?,
            coarse: b((z.coarse_counts_len() + 1) * 4)?,
            scan: b((scan_len.div_ceil(SCAN_TILE) + 2) * 4)?,
            tile_start: b((u64::from(z.coarse_bins) + 1) * 4)?,
            fine: b((z.fine_hist_len() + 1) * 4)?,
            items: b(z.items_max * 8)?,
            sorted: b(z.items_max * 8)?,
            buckets: b(z.shape.keys() * xyzz)?,
            slot_keys: [b(2 * threads * 4)?, b(2 * threads * 4)?],
            slot_points: [b(2 * threads * xyzz)?, b(2 * threads * xyzz)?],
            sums: b(m * u64::from(z.segments) * xyzz)?,
            running: b(m * u64::from(z.segments) * xyzz)?,
            rows: [b(rows * xyzz)?, b(rows * xyzz)?],
        })
    }

    fn fits(&self, z: &MsmSizes, xyzz: u64) -> bool {
        self.sizes == *z && self.xyzz == xyzz
    }
}

fn words_as_bytes(words: &[u32]) -> &[u8] {
    super::ffi::words_as_bytes(words)
}

fn words_as_bytes_mut(words: &mut [u32]) -> &mut [u8] {
    super::ffi::words_as_bytes_mut(words)
}
