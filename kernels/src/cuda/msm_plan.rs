//! Sizing of the GPU MSM (pure functions, no device): window bits, precomputed base copies,
//! sort split, thread counts and buffer sizes. See kernels/cuda/msm.cuh for the algorithm.

/// Scalars are below 2^253 after replacing s > (r-1)/2 by r - s; signed digits need one
/// more bit for the last carry, so windows must cover 254 bits.
pub(crate) const DIGIT_BITS_COVERED: u32 = 254;
/// Booth digits need c >= 2 (digits in [-2^(c-1), 2^(c-1)]).
pub(crate) const MIN_WINDOW_BITS: u32 = 2;
/// 2^22 buckets of 128 B (G1) = 512 MiB per window group: beyond this the bucket reduction
/// costs more than the windows it saves at any size we run (2^26 points).
pub(crate) const MAX_WINDOW_BITS: u32 = 23;
/// Bucket keys (window in group, |digit| - 1) must fit the sort: coarse bins times fine
/// bins, each histogram in shared memory.
pub(crate) const MAX_KEY_BITS: u32 = MAX_COARSE_BITS + MAX_FINE_BITS;
/// 4096 coarse counters = 16 KiB of shared memory per sort block.
pub(crate) const MAX_COARSE_BITS: u32 = 12;
/// 2048 fine counters = 8 KiB of shared memory per tile block.
pub(crate) const MAX_FINE_BITS: u32 = 11;
/// Items per fine-sort tile (MSM_FINE_TILE in msm.cuh).
pub(crate) const FINE_TILE_ITEMS: u64 = 8192;
/// Items (point-copy refs) carry the sign in bit 31: refs and item counts stay below 2^31.
pub(crate) const MAX_REFS: u64 = 1 << 31;
/// More base copies than windows never help; 32 covers c >= 8.
pub(crate) const MAX_COPIES: u32 = 32;

/// Relative costs in units of one mixed addition (madd, 8M+2S), for choosing c.
/// Sorting an item costs a few memory passes (~0.1 madd); a full XYZZ addition in the
/// bucket reduction is 12M+2S (1.4 madd) and two happen per bucket.
const SORT_COST_PER_ITEM: f64 = 0.1;
const BUCKET_REDUCTION_COST_PER_BUCKET: f64 = 2.8;

/// How an MSM of a given size is cut into windows and precomputed base copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MsmShape {
    /// Window bits c.
    pub c: u32,
    /// Windows W = ceil(254 / c).
    pub windows: u32,
    /// Windows per base copy M; copy k serves windows [k*M, (k+1)*M).
    pub group: u32,
    /// Base copies F = ceil(W / M); copy k holds 2^(c*M*k) * P.
    pub copies: u32,
}

impl MsmShape {
    pub fn new(c: u32, max_copies: u32) -> MsmShape {
        assert!(
            (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&c),
            "window bits {c} out of range"
        );
        let windows = DIGIT_BITS_COVERED.div_ceil(c);
        let copies_allowed = max_copies.clamp(1, windows);
        let group = windows.div_ceil(copies_allowed);
        let copies = windows.div_ceil(group);
        MsmShape {
            c,
            windows,
            group,
            copies,
        }
    }

    /// Buckets per window K = 2^(c-1) (digit magnitudes 1..=2^(c-1)).
    pub fn buckets_per_window(&self) -> u64 {
        1u64 << (self.c - 1)
    }

    /// Distinct bucket keys: M * K.
    pub fn keys(&self) -> u64 {
        u64::from(self.group) * self.buckets_per_window()
    }

    /// Doublings between consecutive base copies.
    pub fn copy_shift_bits(&self) -> u32 {
        self.c * self.group
    }

    /// Key bits split into (coarse, fine) for the two sort passes.
    pub fn sort_bits(&self) -> (u32, u32) {
        let key_bits = (64 - (self.keys() - 1).leading_zeros()).max(1);
        assert!(
            key_bits <= MAX_KEY_BITS,
            "{key_bits} key bits exceed the sort's {MAX_KEY_BITS}"
        );
        let fine = key_bits
            .div_ceil(2)
            .min(MAX_FINE_BITS)
            .max(key_bits.saturating_sub(MAX_COARSE_BITS));
        (key_bits - fine, fine)
    }

    fn cost(&self, n: u64) -> f64 {
        let items = n as f64 * f64::from(self.windows);
        items * (1.0 + SORT_COST_PER_ITEM) + BUCKET_REDUCTION_COST_PER_BUCKET * self.keys() as f64
    }

    pub fn valid(&self) -> bool {
        let key_bits = 64 - (self.keys() - 1).leading_zeros();
        key_bits <= MAX_KEY_BITS
    }
}

/// The cheapest shape for `n` points with at most `max_copies` base copies resident.
pub(crate) fn choose_shape(n: u64, max_copies: u32) -> MsmShape {
    let mut best: Option<(f64, MsmShape)> = None;
    for c in MIN_WINDOW_BITS..=MAX_WINDOW_BITS {
        let shape = MsmShape::new(c, max_copies);
        if !shape.valid() || u64::from(shape.copies) * n.max(1) >= MAX_REFS {
            continue;
        }
        let cost = shape.cost(n.max(1));
        if best.as_ref().is_none_or(|(b, _)| cost < *b) {
            best = Some((cost, shape));
        }
    }
    best.map(|(_, s)| s)
        .expect("c = 2 with one copy is always valid below 2^31 points")
}

/// Launch-size constants shared with msm.cuh.
pub(crate) const SORT_THREADS: u32 = 512;
pub(crate) const ACCUMULATE_THREADS_PER_BLOCK: u32 = 128;
pub(crate) const POINT_KERNEL_BLOCK: u32 = 128;
/// Fewer items than this per accumulation thread and more threads only add slots.
pub(crate) const MIN_ITEMS_PER_THREAD: u64 = 8;
/// Slots summed per thread in each combine level (levels = log_4 of the slot count).
pub(crate) const COMBINE_FANIN: u64 = 8;
/// Entries summed per thread in the bit-sum and row-sum levels.
pub(crate) const ROW_CHUNK: u32 = 16;
/// Scalars per coarse-sort block at least (fewer blocks for small inputs).
pub(crate) const MIN_SCALARS_PER_SORT_BLOCK: u64 = 256;

/// Everything one MSM call (one chunk of scalars) allocates and launches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MsmSizes {
    pub len: u64,
    pub shape: MsmShape,
    pub items_max: u64,
    pub coarse_bits: u32,
    pub fine_bits: u32,
    pub coarse_bins: u32,
    pub scalars_per_block: u32,
    pub coarse_blocks: u32,
    pub fine_tiles_max: u64,
    pub accumulate_threads: u32,
    /// Buckets per reduction thread G and threads per window (K / G).
    pub buckets_per_thread: u32,
    pub segments: u32,
    /// 1 + log2(segments): the plain sums per window handed to the host.
    pub rows: u32,
}

impl MsmSizes {
    pub fn new(len: u64, shape: MsmShape, sm_count: u32, resident_per_sm: u32) -> MsmSizes {
        let items_max = len * u64::from(shape.windows);
        assert!(
            items_max < MAX_REFS,
            "{items_max} items overflow the 31-bit item index"
        );
        let (coarse_bits, fine_bits) = shape.sort_bits();
        let coarse_bins = shape.keys().div_ceil(1 << fine_bits) as u32;
        let target_blocks = u64::from(sm_count.max(1)) * 4;
        let blocks = len
            .div_ceil(MIN_SCALARS_PER_SORT_BLOCK)
            .clamp(1, target_blocks);
        let scalars_per_block = len.div_ceil(blocks).max(1);
        let coarse_blocks = len.div_ceil(scalars_per_block).max(1);
        let fine_tiles_max = items_max.div_ceil(FINE_TILE_ITEMS) + u64::from(coarse_bins);
        let resident = u64::from(sm_count.max(1)) * u64::from(resident_per_sm.max(1));
        let accumulate_threads = items_max.div_ceil(MIN_ITEMS_PER_THREAD).clamp(1, resident) as u32;
        let k = shape.buckets_per_window();
        // about one reduction thread per resident slot, split over the windows of a group
        let target_segments = (resident / u64::from(shape.group)).max(1);
        let segments = (1u64 << (63 - target_segments.leading_zeros())).min(k);
        let buckets_per_thread = (k / segments) as u32;
        let rows = 1 + segments.trailing_zeros();
        MsmSizes {
            len,
            shape,
            items_max,
            coarse_bits,
            fine_bits,
            coarse_bins,
            scalars_per_block: scalars_per_block as u32,
            coarse_blocks: coarse_blocks as u32,
            fine_tiles_max,
            accumulate_threads,
            buckets_per_thread,
            segments: segments as u32,
            rows,
        }
    }

    pub fn coarse_counts_len(&self) -> u64 {
        u64::from(self.coarse_bins) * u64::from(self.coarse_blocks)
    }

    pub fn fine_hist_len(&self) -> u64 {
        self.fine_tiles_max << self.fine_bits
    }

    pub fn bit_sum_chunks(&self) -> u32 {
        self.segments.div_ceil(ROW_CHUNK)
    }

    /// Device bytes this call needs besides the bases and scalars.
    pub fn working_bytes(&self, xyzz_bytes: u64) -> u64 {
        let scan_len = self.coarse_counts_len().max(self.fine_hist_len());
        let m = u64::from(self.shape.group);
        let prepared = self.len * 32;
        let items = 2 * self.items_max * 8;
        let counts = (self.coarse_counts_len() + 1) * 4 + (self.fine_hist_len() + 1) * 4;
        let scan = (scan_len.div_ceil(4096) + 1) * 4 + (u64::from(self.coarse_bins) + 1) * 4;
        let buckets = self.shape.keys() * xyzz_bytes;
        let slots = 2 * 2 * u64::from(self.accumulate_threads) * (4 + xyzz_bytes);
        let sums = 2 * m * u64::from(self.segments) * xyzz_bytes;
        let rows = 2 * m * u64::from(self.rows) * u64::from(self.bit_sum_chunks()) * xyzz_bytes;
        prepared + items + counts + scan + buckets + slots + sums + rows
    }
}

/// The largest number of scalars per call (len, or len halved until it fits) whose working
/// set fits `budget_bytes`; Err(bytes needed for one scalar) when even that does not fit.
pub(crate) fn chunk_len(
    len: u64,
    shape: MsmShape,
    sm_count: u32,
    resident_per_sm: u32,
    budget_bytes: u64,
    xyzz_bytes: u64,
) -> Result<u64, u64> {
    let bytes =
        |c: u64| MsmSizes::new(c, shape, sm_count, resident_per_sm).working_bytes(xyzz_bytes);
    let mut chunk = len.max(1);
    while chunk > 1 && bytes(chunk) > budget_bytes {
        chunk = chunk.div_ceil(2);
    }
    if bytes(chunk) > budget_bytes {
        return Err(bytes(chunk));
    }
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_a_253_bit_scalar_with_its_carry() {
        for c in MIN_WINDOW_BITS..=MAX_WINDOW_BITS {
            let s = MsmShape::new(c, MAX_COPIES);
            assert!(s.windows * c >= 254);
            assert!((s.windows - 1) * c < 254);
            assert!(s.group * s.copies >= s.windows);
            assert!((s.copies - 1) * s.group < s.windows, "no idle copy");
        }
    }

    #[test]
    fn precompute_limits_collapse_windows() {
        let full = MsmShape::new(16, MAX_COPIES);
        assert_eq!((full.windows, full.group, full.copies), (16, 1, 16));
        let limited = MsmShape::new(16, 5);
        assert_eq!((limited.group, limited.copies), (4, 4));
        let none = MsmShape::new(16, 1);
        assert_eq!((none.group, none.copies), (16, 1));
        assert_eq!(none.copy_shift_bits(), 256);
    }

    #[test]
    fn chosen_window_grows_with_size() {
        let small = choose_shape(1, MAX_COPIES);
        let mid = choose_shape(1 << 20, MAX_COPIES);
        let big = choose_shape(1 << 24, MAX_COPIES);
        assert!(
            small.c < mid.c && mid.c < big.c,
            "{small:?} {mid:?} {big:?}"
        );
        assert!(
            (18..=21).contains(&mid.c),
            "2^20 with full precompute: {mid:?}"
        );
        assert!(
            (21..=23).contains(&big.c),
            "2^24 with full precompute: {big:?}"
        );
        // without precompute the bucket count multiplies by the windows: smaller c
        assert!(choose_shape(1 << 20, 1).c < mid.c);
        for n in [0u64, 1, 2, 3, 1000, 1 << 16, 1 << 26] {
            for copies in [1, 3, MAX_COPIES] {
                let s = choose_shape(n, copies);
                assert!(s.valid() && s.copies <= copies.max(1));
            }
        }
    }

    #[test]
    fn sort_split_respects_shared_memory_limits() {
        for c in MIN_WINDOW_BITS..=MAX_WINDOW_BITS {
            for copies in [1, 2, 7, MAX_COPIES] {
                let s = MsmShape::new(c, copies);
                if !s.valid() {
                    continue;
                }
                let (coarse, fine) = s.sort_bits();
                assert!(coarse <= MAX_COARSE_BITS && (1..=MAX_FINE_BITS).contains(&fine));
                assert!(s.keys() <= 1u64 << (coarse + fine));
            }
        }
    }

    #[test]
    fn chunks_shrink_to_the_memory_budget() {
        let shape = choose_shape(1 << 20, MAX_COPIES);
        let full = MsmSizes::new(1 << 20, shape, 132, 512).working_bytes(128);
        assert_eq!(chunk_len(1 << 20, shape, 132, 512, full, 128), Ok(1 << 20));
        let half = chunk_len(1 << 20, shape, 132, 512, full / 2, 128).expect("fits in halves");
        assert!((1 << 17..1 << 20).contains(&half), "{half}");
        assert!(chunk_len(1 << 20, shape, 132, 512, 1000, 128).is_err());
    }

    #[test]
    fn sizes_are_consistent() {
        for n in [1u64, 2, 33, 1000, 1 << 20, 1 << 24] {
            let shape = choose_shape(n, MAX_COPIES);
            let z = MsmSizes::new(n, shape, 132, 512);
            assert!(u64::from(z.coarse_blocks) * u64::from(z.scalars_per_block) >= n);
            assert!(u64::from(z.coarse_blocks - 1) * u64::from(z.scalars_per_block) < n);
            assert_eq!(
                u64::from(z.buckets_per_thread) * u64::from(z.segments),
                shape.buckets_per_window()
            );
            assert!(z.segments.is_power_of_two());
            assert!(z.accumulate_threads >= 1);
            assert!(z.fine_hist_len() < 1 << 32);
        }
        let big = MsmSizes::new(1 << 24, choose_shape(1 << 24, MAX_COPIES), 132, 512);
        // 2^24 G1 fits comfortably in an H100's 80 GB
        assert!(
            big.working_bytes(128) < 8 << 30,
            "{}",
            big.working_bytes(128)
        );
    }
}
