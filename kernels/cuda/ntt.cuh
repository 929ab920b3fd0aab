// Number-theoretic transforms over BN254 Fr: multi-pass shared-memory radix-2^S passes.
//
// Decomposition (Bailey's four-step, applied recursively). A size-2^k transform is split into
// P passes of S_1 + ... + S_P = k stages. Pass p works on sub-arrays ("sub-blocks") of
// 2^k_p contiguous elements, k_p = S_p + ... + S_P, viewed as 2^S_p rows of 2^B_p columns
// (B_p = k_p - S_p, element (m, j) at sub-block offset m * 2^B_p + j):
//
//   DIF (Gentleman-Sande, natural in -> bit-reversed out): each column gets a 2^S_p-point
//   DFT with roots of order 2^S_p, its outputs stored bit-reversed in the rows
//   (y[r] at row rev_S(r)), then each element is multiplied by the "twist"
//   w_{2^k_p}^(j * r). What remains for pass p+1 is, for every row, a 2^B_p-point transform
//   of a contiguous run: a sub-block of the next pass. Proof: x[m 2^B + j] with output index
//   f = r + 2^S q gives w_n^((m 2^B + j)(r + 2^S q)) = w_{2^S}^(m r) w_n^(j r) w_{2^B}^(j q).
//   After the last pass (B = 0) position p holds output rev_k(p).
//
//   DIT (Cooley-Tukey, bit-reversed in -> natural out) is the transpose: the passes in
//   reverse order, each multiplying by the same twist at load and then running the column
//   DFTs as radix-2 DIT stages (bit-reversed rows in, natural rows out). The DFT matrix is
//   symmetric, so transposing the DIF factorisation gives the DFT again.
//
// So the only twiddles inside a pass are the 2^(S-1) roots of order 2^S (one shared-memory
// table per block), and between passes one multiplication by a twist factor per element. All
// roots are powers of w = w_{2^28} (the root of order 2^28 that arkworks' radix-2 domains
// square down from): w_{2^s} = w^(2^(28-s)) for every s. w^e = HI[e >> 12] * LO[e & 0xfff]:
// per direction a 2^16-entry table (2 MiB) and a 2^12-entry one (128 KiB), L2-resident and
// shared by all sizes. The split is chosen so that every root of order up to 2^16 is one HI
// entry: the twists of passes on sub-blocks of at most 2^16 (all but the first pass of sizes
// to 2^26) and all in-pass twiddles cost a load and no multiplication.
//
// A block owns a tile of 2^S rows x 2^c columns (c = log_cols): 2^c adjacent columns of one
// sub-block (the planner guarantees 2^c <= 2^B whenever B > 0), so global reads and writes
// are runs of 2^c * 32 bytes (at least 128 B in the large passes); with B = 0 the columns are
// whole sub-blocks and the tile is one contiguous run. Blocks never depend on each other,
// and every block reads and writes only its own tile, so passes run in place.
//
// Scaling (coset powers g^i, 1/n) is folded into a pass as an element-wise factor
// T(i) = SHI[i >> lo_bits] * SLO[i & (2^lo_bits - 1)] (or the constant SHI[0]) at a natural
// index i: at the first DIF pass's load (i = position, forward coset) or at the last DIF
// pass's store (i = rev_k(position), inverse transforms), or between the two halves of the
// fused kernel.
#pragma once
#include "field.cuh"

/// Vectors transformed by one launch (the prover's a, b, c).
#define NTT_MAX_BATCH 3
/// Root tables: w^e = HI[e >> 12] * LO[e & (2^12 - 1)], HI with 2^16 entries.
#define NTT_ROOT_LO_BITS 12
/// log2 of the largest transform (BN254 Fr has 2-adicity 28).
#define NTT_MAX_LOG 28
/// Largest tile: 2^10 elements (32 KiB) plus the 2^9-entry twiddle table (16 KiB) fill the
/// 48 KiB of dynamic shared memory a launch gets without opting in.
#define NTT_MAX_TILE_LOG 10
#define NTT_MAX_THREADS (1 << (NTT_MAX_TILE_LOG - 1))

// ntt_pass_t.flags
#define NTT_TWIST_LOAD 1u       // multiply by the twist after loading (DIT passes)
#define NTT_TWIST_STORE 2u      // multiply by the twist before storing (DIF passes)
#define NTT_SCALE_LOAD 4u       // multiply by T(position) after loading (first pass only)
#define NTT_SCALE_BITREV 8u     // multiply by T(rev_k(position)) after the DIF stages
#define NTT_STORE_BITREV 16u    // store row r at row rev_S(r) (single pass: natural output)
#define NTT_SCALE_CONST 32u     // T(i) is the constant SHI[0]

/// One launch: the same pass over `batch` vectors (blockIdx.x / tiles_per_vector picks the
/// vector). Mirrored byte for byte by kernels/src/cuda/ntt.rs (`PassArgs::to_bytes`).
struct ntt_pass_t {
    const fr_t* roots_hi[2];  // [0]: the (first) transform's direction; [1]: the fused DIT half
    const fr_t* roots_lo[2];
    const fr_t* scale_hi;
    const fr_t* scale_lo;
    fr_t* data[NTT_MAX_BATCH];
    uint32_t tiles_per_vector;
    uint32_t log_sub;      // k_p: log2 of the sub-block
    uint32_t log_stages;   // S: rows of the tile, stages of the pass
    uint32_t log_cols;     // c: columns of the tile
    uint32_t log_n;        // k: log2 of the whole transform (bit reversal of positions)
    uint32_t scale_lo_bits;
    uint32_t flags;
    uint32_t pad;
};
static_assert(sizeof(ntt_pass_t) == 104, "ntt_pass_t must match PassArgs::to_bytes in ntt.rs");
static_assert(NTT_MAX_BATCH == 3, "ntt_block selects data[v] for three vectors");

__device__ __forceinline__ uint32_t ntt_rev(uint32_t x, uint32_t bits) {
    return bits == 0 ? 0u : (__brev(x) >> (32 - bits));
}

__device__ __forceinline__ fr_t ntt_load(const fr_t* p) {
    const uint4* q = reinterpret_cast<const uint4*>(p);
    uint4 a = q[0], b = q[1];
    fr_t r;
    r.l[0] = a.x; r.l[1] = a.y; r.l[2] = a.z; r.l[3] = a.w;
    r.l[4] = b.x; r.l[5] = b.y; r.l[6] = b.z; r.l[7] = b.w;
    return r;
}

__device__ __forceinline__ void ntt_store(fr_t* p, const fr_t& v) {
    uint4* q = reinterpret_cast<uint4*>(p);
    q[0] = uint4{v.l[0], v.l[1], v.l[2], v.l[3]};
    q[1] = uint4{v.l[4], v.l[5], v.l[6], v.l[7]};
}

/// w^e for e < 2^28 from the two-level table.
__device__ __forceinline__ fr_t ntt_root(const fr_t* hi, const fr_t* lo, uint32_t e) {
    const uint32_t mask = (1u << NTT_ROOT_LO_BITS) - 1;
    fr_t h = ntt_load(hi + (e >> NTT_ROOT_LO_BITS));
    if ((e & mask) == 0) return h;
    return h * ntt_load(lo + (e & mask));
}

/// T(i) of the pass's scale table.
__device__ __forceinline__ fr_t ntt_scale_factor(const ntt_pass_t& a, uint32_t i) {
    fr_t h = ntt_load(a.scale_hi + (a.flags & NTT_SCALE_CONST ? 0u : (i >> a.scale_lo_bits)));
    if (a.flags & NTT_SCALE_CONST) return h;
    return h * ntt_load(a.scale_lo + (i & ((1u << a.scale_lo_bits) - 1)));
}

/// Where tile element L lives: shared index (q << S | m) and global index in the vector.
/// With B > 0 the column index q varies fastest (runs of 2^c adjacent columns); with B = 0
/// the row m does (each column is a contiguous sub-block).
struct ntt_slot_t {
    uint32_t shared;
    uint32_t global;
    uint32_t row;     // m
    uint32_t column;  // Q: column index within the vector (sub-block << B | j)
};

__device__ __forceinline__ ntt_slot_t ntt_slot(const ntt_pass_t& a, uint32_t tile, uint32_t L) {
    uint32_t S = a.log_stages, c = a.log_cols, B = a.log_sub - a.log_stages;
    uint32_t m, q;
    if (B == 0) {
        m = L & ((1u << S) - 1);
        q = L >> S;
    } else {
        q = L & ((1u << c) - 1);
        m = L >> c;
    }
    uint32_t Q = (tile << c) + q;
    ntt_slot_t s;
    s.shared = (q << S) | m;
    s.global = ((Q >> B) << a.log_sub) | (m << B) | (Q & ((1u << B) - 1));
    s.row = m;
    s.column = Q;
    return s;
}

/// The twist w_{2^k_p}^(j * rev_S(m)) of tile element (m, Q).
__device__ __forceinline__ fr_t ntt_twist(const ntt_pass_t& a, int dir, const ntt_slot_t& s) {
    uint32_t S = a.log_stages, B = a.log_sub - a.log_stages;
    uint32_t j = s.column & ((1u << B) - 1);
    uint32_t r = ntt_rev(s.row, S);
    uint32_t e = (j * r) << (NTT_MAX_LOG - a.log_sub);  // j * r < 2^k_p <= 2^28
    return ntt_root(a.roots_hi[dir], a.roots_lo[dir], e);
}

/// Fills tw[0 .. 2^(S-1)) with the roots of order 2^S of direction `dir`:
/// w_{2^S}^i = w^(i * 2^(28-S)) = HI[i << (16 - S)] (S <= 16).
__device__ __forceinline__ void ntt_load_twiddles(const ntt_pass_t& a, int dir, fr_t* tw) {
    uint32_t S = a.log_stages;
    for (uint32_t i = threadIdx.x; i < (1u << (S - 1)); i += blockDim.x)
        ntt_store(tw + i, ntt_load(a.roots_hi[dir] + (i << (NTT_MAX_LOG - NTT_ROOT_LO_BITS - S))));
}

/// S radix-2 stages on every column of the tile (column q at tile[q << S ..]).
/// DIF: half-size H = 2^(S-1) .. 1, (x, y) -> (x + y, (x - y) w_{2H}^j).
/// DIT: H = 1 .. 2^(S-1), (x, y) -> (x + y w_{2H}^j, x - y w_{2H}^j).
/// w_{2H}^j = tw[j << (S - 1 - log H)]. Ends with a barrier.
template <bool DIT>
__device__ __forceinline__ void ntt_stages(fr_t* tile, const fr_t* tw, uint32_t S, uint32_t c) {
    uint32_t butterflies = 1u << (S - 1 + c);
    for (uint32_t st = 0; st < S; st++) {
        uint32_t logH = DIT ? st : S - 1 - st;
        for (uint32_t t = threadIdx.x; t < butterflies; t += blockDim.x) {
            uint32_t q = t >> (S - 1);
            uint32_t u = t & ((1u << (S - 1)) - 1);
            uint32_t j = u & ((1u << logH) - 1);
            uint32_t i0 = (q << S) | ((u >> logH) << (logH + 1)) | j;
            uint32_t i1 = i0 + (1u << logH);
            fr_t x = ntt_load(tile + i0);
            fr_t y = ntt_load(tile + i1);
            // H = 1: the twiddle is w_2^0 = 1 (uniform over the block: no divergence)
            if (DIT) {
                if (logH != 0) y = y * ntt_load(tw + (j << (S - 1 - logH)));
                ntt_store(tile + i0, x + y);
                ntt_store(tile + i1, x - y);
            } else {
                ntt_store(tile + i0, x + y);
                fr_t d = x - y;
                if (logH != 0) d = d * ntt_load(tw + (j << (S - 1 - logH)));
                ntt_store(tile + i1, d);
            }
        }
        __syncthreads();
    }
}

/// Block setup shared by the pass kernels: which vector and tile, shared-memory regions.
struct ntt_block_t {
    fr_t* data;
    uint32_t tile;
    uint32_t elems;
    fr_t* shared_tile;
    fr_t* tw;
};

__device__ __forceinline__ ntt_block_t ntt_block(const ntt_pass_t& a) {
    ntt_block_t b;
    uint32_t v = blockIdx.x / a.tiles_per_vector;
    PR_ASSERT(v < NTT_MAX_BATCH, "ntt: block beyond the batch");
    PR_ASSERT(a.log_stages >= 1 && a.log_stages <= NTT_MAX_TILE_LOG, "ntt: stages out of range");
    PR_ASSERT(a.log_stages + a.log_cols <= NTT_MAX_TILE_LOG, "ntt: tile too large");
    PR_ASSERT(a.log_sub <= a.log_n && a.log_n <= NTT_MAX_LOG, "ntt: sizes out of range");
    // selected without a dynamic index: indexing the parameter array would copy it to local memory
    b.data = v == 0 ? a.data[0] : (v == 1 ? a.data[1] : a.data[2]);
    b.tile = blockIdx.x - v * a.tiles_per_vector;
    b.elems = 1u << (a.log_stages + a.log_cols);
    b.shared_tile = reinterpret_cast<fr_t*>(pr_shared_base());
    b.tw = b.shared_tile + b.elems;
    return b;
}

/// Loads the tile (with the twist / scale the flags ask for).
__device__ __forceinline__ void ntt_load_tile(const ntt_pass_t& a, const ntt_block_t& b, int dir) {
    for (uint32_t L = threadIdx.x; L < b.elems; L += blockDim.x) {
        ntt_slot_t s = ntt_slot(a, b.tile, L);
        fr_t x = ntt_load(b.data + s.global);
        if (a.flags & NTT_TWIST_LOAD) x = x * ntt_twist(a, dir, s);
        if (a.flags & NTT_SCALE_LOAD) x = x * ntt_scale_factor(a, s.global);
        ntt_store(b.shared_tile + s.shared, x);
    }
}

/// Multiplies tile elements by T(rev_k(position)) (the natural index of a bit-reversed
/// output). Each thread touches only the elements it stores later: no barrier needed after.
__device__ __forceinline__ fr_t ntt_bitrev_scaled(const ntt_pass_t& a, const ntt_slot_t& s,
                                                  const fr_t& x) {
    return x * ntt_scale_factor(a, ntt_rev(s.global, a.log_n));
}

/// Stores the tile (with the twist / scale / bit-reversed rows the flags ask for).
__device__ __forceinline__ void ntt_store_tile(const ntt_pass_t& a, const ntt_block_t& b, int dir) {
    for (uint32_t L = threadIdx.x; L < b.elems; L += blockDim.x) {
        ntt_slot_t s = ntt_slot(a, b.tile, L);
        fr_t x = ntt_load(b.shared_tile + s.shared);
        if (a.flags & NTT_TWIST_STORE) x = x * ntt_twist(a, dir, s);
        if (a.flags & NTT_SCALE_BITREV) x = ntt_bitrev_scaled(a, s, x);
        uint32_t g = s.global;
        if (a.flags & NTT_STORE_BITREV) {
            // single sub-block per column (B = 0): row m goes to row rev_S(m)
            uint32_t S = a.log_stages;
            g = (g & ~((1u << S) - 1)) | ntt_rev(s.row, S);
        }
        ntt_store(b.data + g, x);
    }
}

__device__ __forceinline__ void ntt_dif_pass_impl(const ntt_pass_t& a) {
    ntt_block_t b = ntt_block(a);
    PR_ASSERT(!(a.flags & NTT_TWIST_LOAD), "ntt: DIF passes twist at the store");
    PR_ASSERT(!(a.flags & NTT_STORE_BITREV) || a.log_sub == a.log_stages,
              "ntt: bit-reversed rows need B = 0");
    ntt_load_twiddles(a, 0, b.tw);
    ntt_load_tile(a, b, 0);
    __syncthreads();
    ntt_stages<false>(b.shared_tile, b.tw, a.log_stages, a.log_cols);
    ntt_store_tile(a, b, 0);
}

__device__ __forceinline__ void ntt_dit_pass_impl(const ntt_pass_t& a) {
    ntt_block_t b = ntt_block(a);
    PR_ASSERT(!(a.flags & (NTT_TWIST_STORE | NTT_SCALE_BITREV | NTT_STORE_BITREV | NTT_SCALE_LOAD)),
              "ntt: DIT passes only twist at the load");
    ntt_load_twiddles(a, 0, b.tw);
    ntt_load_tile(a, b, 0);
    __syncthreads();
    ntt_stages<true>(b.shared_tile, b.tw, a.log_stages, a.log_cols);
    ntt_store_tile(a, b, 0);
}

/// The last DIF pass and the first DIT pass of "interpolate, then evaluate on a coset" in one
/// read and write: DIF stages with roots[0], the scale at the natural index, DIT stages with
/// roots[1]. Both passes work on the same contiguous sub-blocks (B = 0).
__device__ __forceinline__ void ntt_dif_dit_pass_impl(const ntt_pass_t& a) {
    ntt_block_t b = ntt_block(a);
    PR_ASSERT(a.log_sub == a.log_stages, "ntt: the fused pass needs B = 0");
    PR_ASSERT(a.flags == NTT_SCALE_BITREV || a.flags == (NTT_SCALE_BITREV | NTT_SCALE_CONST),
              "ntt: the fused pass only scales");
    ntt_load_twiddles(a, 0, b.tw);
    ntt_load_tile(a, b, 0);
    __syncthreads();
    ntt_stages<false>(b.shared_tile, b.tw, a.log_stages, a.log_cols);
    // the stages ended with a barrier: every read of tw is done, the tile is complete
    ntt_load_twiddles(a, 1, b.tw);
    for (uint32_t L = threadIdx.x; L < b.elems; L += blockDim.x) {
        ntt_slot_t s = ntt_slot(a, b.tile, L);
        fr_t x = ntt_load(b.shared_tile + s.shared);
        ntt_store(b.shared_tile + s.shared, ntt_bitrev_scaled(a, s, x));
    }
    __syncthreads();
    ntt_stages<true>(b.shared_tile, b.tw, a.log_stages, a.log_cols);
    for (uint32_t L = threadIdx.x; L < b.elems; L += blockDim.x) {
        ntt_slot_t s = ntt_slot(a, b.tile, L);
        ntt_store(b.data + s.global, ntt_load(b.shared_tile + s.shared));
    }
}

// ---- bit-reversal permutation (in place) ----------------------------------------------

/// Bits of each side of a bit-reversal tile: 2^4 x 2^4 elements.
#define NTT_BITREV_SIDE_LOG 4
#define NTT_BITREV_THREADS (1 << (2 * NTT_BITREV_SIDE_LOG))

/// In-place bit reversal of 2^k elements, k >= 2 * SIDE_LOG. Index i = (a, b, c): a the top
/// t bits, c the low t bits, b the k - 2t middle bits; rev(i) = (rev c, rev b, rev a). Block b
/// (for b <= rev b) loads the 2^t x 2^t tiles of b and of rev b (rows a, contiguous c) and
/// writes each to the other's place transposed (rows rev c, contiguous rev a): all global
/// traffic is in runs of 2^t elements. Blocks with b > rev b exit at once (their pair is
/// done by the block of rev b).
__device__ __forceinline__ void ntt_bitrev_impl(fr_t* data, uint32_t k) {
    const uint32_t t = NTT_BITREV_SIDE_LOG, side = 1u << t;
    PR_ASSERT(k >= 2 * t && k <= NTT_MAX_LOG, "ntt_bitrev: size out of range");
    uint32_t mid = k - 2 * t;
    uint32_t b = blockIdx.x;
    uint32_t rb = ntt_rev(b, mid);
    if (b > rb) return;  // the whole block leaves before any barrier
    fr_t* tiles = reinterpret_cast<fr_t*>(pr_shared_base());  // [2][side][side]
    uint32_t blocks[2] = {b, rb};
    uint32_t ntiles = b == rb ? 1 : 2;
    for (uint32_t w = 0; w < ntiles; w++) {
        for (uint32_t L = threadIdx.x; L < side * side; L += blockDim.x) {
            uint32_t ra = L >> t, cc = L & (side - 1);
            uint32_t g = (ra << (k - t)) | (blocks[w] << t) | cc;
            ntt_store(tiles + w * side * side + L, ntt_load(data + g));
        }
    }
    __syncthreads();
    for (uint32_t w = 0; w < ntiles; w++) {
        // tile w goes to the place of the other middle value
        uint32_t dest_mid = blocks[w] == b ? rb : b;
        for (uint32_t L = threadIdx.x; L < side * side; L += blockDim.x) {
            uint32_t oc = L >> t, oa = L & (side - 1);  // output row rev c, column rev a
            uint32_t src = (ntt_rev(oa, t) << t) | ntt_rev(oc, t);
            uint32_t g = (oc << (k - t)) | (dest_mid << t) | oa;
            ntt_store(data + g, ntt_load(tiles + w * side * side + src));
        }
    }
}

/// In-place bit reversal of a small vector (2^k <= 2^(2t) elements) in one block.
__device__ __forceinline__ void ntt_bitrev_small_impl(fr_t* data, uint32_t k) {
    PR_ASSERT(k >= 1 && k < 2 * NTT_BITREV_SIDE_LOG, "ntt_bitrev_small: size out of range");
    fr_t* tile = reinterpret_cast<fr_t*>(pr_shared_base());
    uint32_t n = 1u << k;
    for (uint32_t i = threadIdx.x; i < n; i += blockDim.x) ntt_store(tile + i, ntt_load(data + i));
    __syncthreads();
    for (uint32_t i = threadIdx.x; i < n; i += blockDim.x) ntt_store(data + i, ntt_load(tile + ntt_rev(i, k)));
}

// ---- element-wise ---------------------------------------------------------------------

/// a[i] = a[i] * b[i] - c[i] for i < n (grid-stride).
__device__ __forceinline__ void fr_mul_sub_impl(fr_t* a, const fr_t* b, const fr_t* c, uint32_t n) {
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        ntt_store(a + i, ntt_load(a + i) * ntt_load(b + i) - ntt_load(c + i));
    }
}
