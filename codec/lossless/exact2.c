/* lic-exact-2, -3, -4 and -5: the residual layer's scanline coders, compiled
 * (codec/lossless/exact2.py has the Python face and the description of the model;
 * bitstream/FORMAT.md the format).  Version 3 differs from version 2 in three places only: fewer
 * sub-predictions (those that earn their place in the blend), how q's size is binarised (a unary
 * code that starts from the context's likeliest size instead of from zero, so fewer bits are
 * coded), and R and B taken as G where they equalled it next door (no blend there).  Version 4
 * differs from version 3 in an adaptive linear sub-prediction in every blend (lms_predict), three
 * more fixed ones for G in colour, its contexts (the sign's, the class, a second bias correction,
 * the probabilities' weighing) and an option the encoder chooses per image, tools for images of few colours (text and graphics, a colour
 * overlay on gray): a match mode against the neighbours' values, and for R and B a gray bit and a
 * colour map (see code_sample).  Version 5 differs from version 4 in the LMS's update (32-bit steps,
 * so that it vectorises: lms_update) and a secondary estimation of the size token's and the sign's
 * bits (code_bit_sse).
 *
 * Samples are visited in raster order, pixel by pixel, channel by channel (G, R, B or one gray
 * channel); each is predicted from samples already coded, its prediction error q quantised in the
 * loop (JPEG-LS near-lossless) and q coded as modelled bits with bitstream/binary_coder.h.
 * Integer arithmetic only: encoder and decoder compute the same predictions and probabilities on
 * every machine.  Memory: four rows per channel besides the samples themselves.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "binary_coder.h"

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define ALWAYS_INLINE __forceinline
#else
#define ALWAYS_INLINE inline
#endif

#define SHIFT 3  /* predictions carry 3 fraction bits */
#define ONE (1 << SHIFT)
#define MAX_PRED 12
#define N_SCALE 64       /* classes of the expected error, 4 per octave */
#define N_CLASS (N_SCALE + 2) /* and version 3's class of R and B where they equal G next door, and
                                * version 4's where the colour map predicts them */
#define GRAY_CLASS N_SCALE
#define MAP_CLASS (N_SCALE + 1)
#define N_REF 6          /* classes of G's |q| at the same pixel, for R and B */
#define N_SIGN 18        /* sign contexts: the flip, and the signs of q at W and at N */
#define N_BUCKET 18      /* bit lengths of |q| - 1: 0..16, and one spare */
#define N_TOKEN (N_BUCKET + 1) /* version 3's size token: 0 for q = 0, else 1 + the bit length of |q| - 1 */
#define N_BIAS (256 * 8) /* CALIC's texture (8 bits) x error energy (8 classes) */
#define BIAS_RESET 64    /* halve a bias context's statistics at this count */
#define BIAS_RESET4 128  /* version 4's */
#define N_SIGN4 (2 * 81 * 4 * 3 * 2) /* version 4's sign contexts, see sign_context() */
#define N_BIAS2 (9 * 8)  /* version 4's second bias context: the signs of q at W and N x error energy */
#define ERR_CAP ((1 << 20) - 1)
/* Version 4's adaptive linear sub-prediction (see lms_predict): */
#define LMS_TAPS_MAX 14  /* inputs: 6 of the channel, 4 per channel coded before it at the pixel */
#define LMS_LANES_MAX 16 /* inputs as whole vectors of 8 int32 (G: 8, R and B: 16), the unused ones 0 */
#define LMS_WB 16        /* weights in units of 2^-16 */
#define LMS_RATE 5       /* step: 2^-5 of the error over the inputs' power (rounded up to a power of two) */
#define LMS_WMAX (1 << (LMS_WB + 5)) /* |weight| <= 32: keeps every product of version 4's update in 64 bits */
#define LMS_STEP_BITS 29 /* version 5: |e u| < 2^29 in the update, so every product and sum of it fits in int32 */
/* Version 5's secondary estimation of the token and sign bits (see code_bit_sse): */
#define SSE_BINS 33      /* nodes over the stretched probability, 128 apart (stretch in -2047..2047) */
#define SSE_RATE 7       /* each node moves 2^-7 of the way to the bit coded */
#define N_SSE_TOKEN (2 * N_TOKEN + 1) /* a row per token bit: first, up[i] (1 + i), down[i] (1 + N_TOKEN + i) */
#define N_SSE_LEVEL 4    /* |L - blend| against E: at most E / 4, E / 2, E, more */
#define N_SSE_SIDE 3     /* L's side of the unrounded prediction, seen from q's flipped sign: none, below, above */
#define PAD 2            /* columns left and right of each row buffer */
#define RING 4           /* rows kept per channel: y - 2 .. y + 1 */

typedef struct {
    int n_pred;
    int64_t bias_sum[N_BIAS];
    int32_t bias_count[N_BIAS];
    bc_bit zero[N_CLASS][N_REF];
    bc_bit sign[N_CLASS][N_SIGN];
    bc_bit bucket[N_CLASS][N_REF][N_BUCKET];
    bc_bit mantissa[N_CLASS][N_BUCKET][3];
    /* Version 3's token t: is t above the class's likeliest token t0 (first), then unary upwards
     * (up[i]: t > i, given t >= i) or downwards (down[i]: t < i, given t <= i). */
    bc_bit first[N_CLASS][N_REF];
    bc_bit up[N_CLASS][N_REF][N_TOKEN];
    bc_bit down[N_CLASS][N_REF][N_TOKEN];
    uint8_t start[N_CLASS]; /* t0 */
    bc_bit sign4[N_SIGN4];     /* version 4's sign */
    int64_t bias2_sum[N_BIAS2]; /* version 4's second bias correction */
    int32_t bias2_count[N_BIAS2];
    int32_t *map;   /* version 4 with the colour map, R and B: maxval + 1 entries, the last value seen
                     * at a sample that was not G' with each value of G' (-1: none yet) */
    bc_bit match_bit[64][3][4]; /* version 4's match mode: x is the i-th distinct value of W, N, NE, NW */
    /* Version 5's secondary estimation (code_bit_sse): P(1) at the nodes, units of 2^-16, of each token
     * bit's row (first, up[i], down[i]) per level, and of the sign's per side, level and |q| = 1. */
    uint16_t sse_token[N_SSE_LEVEL][N_SSE_TOKEN][SSE_BINS];
    uint16_t sse_sign[N_SSE_SIDE][N_SSE_LEVEL][2][SSE_BINS];
    bc_bit gray_bit[4][2]; /* version 4's gray flag: R (or B) is G', by gray neighbours x (B: R is G') */
    uint8_t *hits;  /* and RING rows of width + 2 PAD: did the map predict the sample exactly */
    int32_t *rows;  /* RING rows of width + 2 PAD samples */
    int32_t *qs;    /* RING rows of width + 2 PAD: the q of each sample (0 in the padding) */
    uint32_t *err;  /* RING rows of (width + 2 PAD) x n_pred errors of the sub-predictions, ONE units */
    uint32_t *above; /* (width + 2 PAD) x n_pred: Rows.above */
    int32_t lms_w[LMS_LANES_MAX]; /* version 4: the linear sub-prediction's weights, units of 2^-LMS_WB */
    int32_t lms_u[LMS_LANES_MAX]; /* and its inputs at the sample being coded (those past the channel's
                                   * inputs stay 0, and so do their weights) */
    int64_t lms_acc;              /* sum of weight x input there */
    int32_t lms_base;             /* W + N there */
} Channel;

/* One channel's rows around the row being coded, set at the start of each row. */
typedef struct {
    int32_t *cur, *up, *up2, *next;  /* samples of rows y, y - 1, y - 2, y + 1 */
    int32_t *qcur, *qup;              /* q of rows y and y - 1 */
    uint32_t *ecur;                   /* errors of row y */
    uint8_t *hits, *hup;              /* version 4 (colour map): the map's hits in rows y and y - 1 */
    uint32_t *above;                  /* per position and sub-prediction: the errors at N, NW, NE and NN/2 */
} Rows;

typedef struct {
    int version, channels, height, width, maxval, max_error, unit, bucket_max;
    int few_colours;  /* version 4's option for images of few colours: the match mode, and in colour the gray
                       * bit and the colour map (see "Version 4" below) */
    size_t stride;  /* width + 2 PAD */
    Channel *ch;
} Scan;

#define bit_length bc_bit_length

static inline int64_t floor_div(int64_t a, int64_t b) { /* b > 0 */
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static inline int32_t floor_div32(int32_t a, int32_t b) { /* b > 0 */
    int32_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* floor(a / 2^s) for |a| < 2^62 and 0 <= s <= 62, without a branch (signs of LMS products are
 * coin flips) and without shifting a negative number (implementation-defined in C): a + 2^62 is
 * shifted as unsigned, and 2^(62 - s) taken off. */
static inline int64_t floor_shr(int64_t a, int s) {
    return (int64_t)(((uint64_t)a + ((uint64_t)1 << 62)) >> s) - ((int64_t)1 << (62 - s));
}

/* 0..7 for v = 0..7, then 4 classes per octave: 4 (L - 3) + the top 3 bits of v, capped. */
static inline int log_class(int64_t v) {
    int length = bit_length((uint64_t)v);
    if (length <= 3) return (int)v;
    int c = 4 * (length - 3) + (int)(v >> (length - 3));
    return c < N_SCALE ? c : N_SCALE - 1;
}

/* The lower edge of a class: the expected error it stands for (the gray class starts as class 0). */
static inline int64_t class_value(int c) {
    return c < 8 ? c : c >= N_SCALE ? 0 : (int64_t)(4 + c % 4) << (c / 4 - 1);
}

/* Starting probabilities: |q| two-sided geometric with the class's mean (about E / (5 ONE), as
 * in lic-exact-1's priors), theta = mean / (1 + mean) in units of 2^-16; then
 * P(q != 0) = 2 theta / (1 + theta),  P(bucket > i | bucket >= i) = theta^(2^(i-1)) (theta for i = 0). */
static void init_models(Channel *ch) {
    for (int c = 0; c < N_CLASS; c++) {
        int64_t e = class_value(c);
        if (e < 3) e = 3;  /* mean |q| at least 1/13 */
        uint64_t theta = ((uint64_t)e << 16) / (uint64_t)(e + 5 * ONE);
        uint32_t nonzero = (uint32_t)((2 * theta << 16) / (BC_ONE + theta));
        for (int r = 0; r < N_REF; r++) bc_bit_init(&ch->zero[c][r], nonzero);
        for (int k = 0; k < N_SIGN; k++) bc_bit_init(&ch->sign[c][k], BC_ONE / 2);
        uint64_t t = theta;
        for (int i = 0; i < N_BUCKET; i++) {
            if (i >= 2) t = (t * t) >> 16;
            for (int r = 0; r < N_REF; r++) bc_bit_init(&ch->bucket[c][r][i], (uint32_t)t);
            for (int k = 0; k < 3; k++) bc_bit_init(&ch->mantissa[c][i][k], BC_ONE / 2);
        }
    }
    memset(ch->bias_sum, 0, sizeof ch->bias_sum);
    memset(ch->bias_count, 0, sizeof ch->bias_count);
    memset(ch->bias2_sum, 0, sizeof ch->bias2_sum);
    memset(ch->bias2_count, 0, sizeof ch->bias2_count);
    for (int k = 0; k < N_SIGN4; k++) bc_bit_init(&ch->sign4[k], BC_ONE / 2);
    for (int k = 0; k < 8; k++) bc_bit_init(&ch->gray_bit[k / 2][k % 2], BC_ONE / 2);
    for (int k = 0; k < 64 * 3 * 4; k++) bc_bit_init(&ch->match_bit[k / 12][k / 4 % 3][k % 4], BC_ONE / 2);
}

/* Version 3's token models, from the same geometric law: T(i) = P(t >= i), with
 * P(t > i | t >= i) the bucket probabilities above (P(q != 0) for i = 0); t0 is the largest token
 * with T(t0) >= 1/2 (the law's median). */
static void init_token_models(Channel *ch) {
    for (int c = 0; c < N_CLASS; c++) {
        int64_t e = class_value(c);
        if (e < 3) e = 3;
        uint64_t theta = ((uint64_t)e << 16) / (uint64_t)(e + 5 * ONE);
        uint64_t above[N_TOKEN], T[N_TOKEN + 1], t = theta;
        above[0] = (2 * theta << 16) / (BC_ONE + theta);
        for (int i = 1; i < N_TOKEN; i++) {
            if (i >= 3) t = (t * t) >> 16;
            above[i] = t;
        }
        T[0] = BC_ONE;
        for (int i = 0; i < N_TOKEN; i++) T[i + 1] = (T[i] * above[i]) >> 16;
        int t0 = 0;
        while (t0 + 1 < N_TOKEN && 2 * T[t0 + 1] >= BC_ONE) t0++;
        ch->start[c] = (uint8_t)t0;
        for (int r = 0; r < N_REF; r++) {
            bc_bit_init(&ch->first[c][r], (uint32_t)T[t0 + 1]);
            for (int i = 0; i < N_TOKEN; i++) {
                uint64_t at_most = BC_ONE - T[i + 1]; /* P(t <= i) */
                bc_bit_init(&ch->up[c][r][i], (uint32_t)above[i]);
                bc_bit_init(&ch->down[c][r][i], at_most ? (uint32_t)(((BC_ONE - T[i]) << 16) / at_most) : BC_ONE / 2);
            }
        }
    }
}

/* Where row y (y >= -2) starts in a ring buffer, counted in positions, x = 0 at the offset. */
static inline size_t ring_offset(const Scan *s, int y) {
    return (size_t)((unsigned)(y + RING) % RING) * s->stride + PAD;
}

static inline int32_t *row_of(const Scan *s, int c, int y) { return s->ch[c].rows + ring_offset(s, y); }

static inline uint32_t *err_of(const Scan *s, int c, int y) {
    return s->ch[c].err + ring_offset(s, y) * (size_t)s->ch[c].n_pred;
}

/* X' + MED of the differences to an earlier channel X', X' + their W and N mean (doubled), X' + NE's. */
static inline void inter(const int32_t *cur, const int32_t *up, const int32_t *xcur, const int32_t *xup, int x,
                         int32_t *med, int32_t *mean2, int32_t *ne) {
    int32_t v = xcur[x];
    int32_t dw = cur[x - 1] - xcur[x - 1], dn = up[x] - xup[x];
    int32_t dnw = up[x - 1] - xup[x - 1], dne = up[x + 1] - xup[x + 1];
    int32_t lo = dw < dn ? dw : dn, hi = dw < dn ? dn : dw;
    int32_t d = dnw >= hi ? lo : dnw <= lo ? hi : dw + dn - dnw;
    *med = v + d;
    *mean2 = 2 * v + dw + dn;
    *ne = v + dne;
}

/* The sub-predictions of channel c at x, in ONE units; returns how many (n_predictors).  Version 3
 * keeps those that earn their place in the blend: each costs time, and a blend of many similar
 * predictions dilutes the best one's weight. */
static ALWAYS_INLINE int predictors(const Rows *r, int version, int channels, int c, int x, int32_t *p) {
    const int32_t *cur = r[c].cur, *up = r[c].up;
    int32_t w = cur[x - 1], n = up[x], nw = up[x - 1], ne = up[x + 1];
    int32_t lo = w < n ? w : n, hi = w < n ? n : w;
    int32_t med = nw >= hi ? lo : nw <= lo ? hi : w + n - nw;
    const int v2 = version == 2;
    int k = 0;
    if (v2 || channels == 1) p[k++] = ONE * (w + ne - n);
    p[k++] = ONE * n;
    p[k++] = ONE * w;
    if (v2) p[k++] = ONE * (w + n - nw);
    if (v2) p[k++] = ONE * med;
    if (c == 0) {
        if (v2) p[k++] = ONE * n; /* N again: version 2 weighs it twice */
        p[k++] = ONE * ne;
        if (channels == 1) {
            p[k++] = ONE * (2 * n - r[c].up2[x]);
            if (v2) p[k++] = ONE * (2 * w - cur[x - 2]);
        }
        if (v2) p[k++] = (ONE / 2) * (w + ne);
        p[k++] = (ONE / 2) * (w + n);
        if (channels == 1) p[k++] = (ONE / 2) * (n + ne);
        else if (version >= 4) {
            p[k++] = ONE * (2 * w - cur[x - 2]);
            p[k++] = ONE * (w + ne - n);
            p[k++] = ONE * (2 * n - r[c].up2[x]);
        }
    } else {
        int32_t gmed, gmean2, gne, rmed, rmean2, rne;
        inter(cur, up, r[0].cur, r[0].up, x, &gmed, &gmean2, &gne);
        p[k++] = ONE * gmed;
        p[k++] = ONE * gne;
        if (c == 2) {
            inter(cur, up, r[1].cur, r[1].up, x, &rmed, &rmean2, &rne);
            p[k++] = ONE * rmed;
        }
        if (v2) p[k++] = (ONE / 2) * (w + ne);
        p[k++] = (ONE / 2) * gmean2;
        if (c == 2) p[k++] = (ONE / 2) * rmean2;
    }
    return k;
}

/* Point r at the rows around row y and sum the errors above it.  Errors are only ever written at
 * x in 0..width - 1, so the padding's stay zero (calloc) and a row needs no clearing. */
static void start_row(const Scan *s, int c, int y, Rows *r) {
    const Channel *ch = &s->ch[c];
    const size_t np = (size_t)ch->n_pred, n = s->stride * np;
    r->cur = row_of(s, c, y);
    r->up = row_of(s, c, y - 1);
    r->up2 = row_of(s, c, y - 2);
    r->next = row_of(s, c, y + 1);
    r->qcur = ch->qs + ring_offset(s, y);
    r->qup = ch->qs + ring_offset(s, y - 1);
    r->ecur = err_of(s, c, y);
    r->hits = ch->hits ? ch->hits + ring_offset(s, y) : NULL;
    r->hup = ch->hits ? ch->hits + ring_offset(s, y - 1) : NULL;
    const uint32_t *eup = err_of(s, c, y - 1) - PAD * np, *eup2 = err_of(s, c, y - 2) - PAD * np;
    uint32_t *above = ch->above;
    for (size_t i = np; i + np < n; i++) above[i] = eup[i - np] + eup[i] + eup[i + np] + (eup2[i] >> 1);
    r->above = above + PAD * np;
}

/* The blend's weights: 2^30 / m^2, with m the error sum S shifted so that the smallest S of the
 * sample has 7 significant bits; an S over 128 times the smallest gets no weight. */
#define N_INVERSE (1 << 14)
static uint32_t inverse_square[N_INVERSE];

static void init_tables(void) {
    for (uint32_t m = 8; m < N_INVERSE; m++) inverse_square[m] = (uint32_t)((1ull << 30) / ((uint64_t)m * m));
}

/* Code (or decode) q of one sample in its context: is it zero; its sign (in the sign context
 * sctx); the bit length b of |q| - 1 in unary; the two bits below that length's top bit
 * modelled; the rest direct. */
static ALWAYS_INLINE void encode_q(bc_encoder *e, Channel *ch, int version, int cls, int ref, int sctx,
                                   int bucket_max, int64_t v) {
    uint64_t a = v ? (uint64_t)(v < 0 ? -v : v) - 1 : 0;
    int b = bit_length(a);
    if (version == 2) {
        bc_encode(e, &ch->zero[cls][ref], v != 0);
        if (v == 0) return;
        bc_encode(e, &ch->sign[cls][sctx], v < 0);
        for (int i = 0; i < bucket_max; i++) {
            bc_encode(e, &ch->bucket[cls][ref][i], b > i);
            if (b <= i) break;
        }
    } else {
        /* The token t in 0 .. bucket_max + 1, from t0 up or down. */
        int t = v ? 1 + b : 0, t0 = ch->start[cls] < bucket_max ? ch->start[cls] : bucket_max;
        bc_encode(e, &ch->first[cls][ref], t > t0);
        if (t > t0) {
            for (int i = t0 + 1; i <= bucket_max; i++) {
                bc_encode(e, &ch->up[cls][ref][i], t > i);
                if (t <= i) break;
            }
        } else {
            for (int i = t0; i > 0; i--) {
                bc_encode(e, &ch->down[cls][ref][i], t < i);
                if (t >= i) break;
            }
        }
        if (v == 0) return;
        bc_encode(e, &ch->sign[cls][sctx], v < 0);
    }
    if (b >= 2) {
        int top = (int)((a >> (b - 2)) & 1);
        bc_encode(e, &ch->mantissa[cls][b][0], top);
        if (b >= 3) {
            bc_encode(e, &ch->mantissa[cls][b][1 + top], (int)((a >> (b - 3)) & 1));
            bc_encode_direct(e, (uint32_t)a, b - 3);
        }
    }
}

static ALWAYS_INLINE int64_t decode_q(bc_decoder *d, Channel *ch, int version, int cls, int ref, int sctx,
                                      int bucket_max) {
    int b = 0, negative;
    if (version == 2) {
        if (!bc_decode(d, &ch->zero[cls][ref])) return 0;
        negative = bc_decode(d, &ch->sign[cls][sctx]);
        while (b < bucket_max && bc_decode(d, &ch->bucket[cls][ref][b])) b++;
    } else {
        int t0 = ch->start[cls] < bucket_max ? ch->start[cls] : bucket_max, t;
        if (bc_decode(d, &ch->first[cls][ref])) {
            t = t0 + 1;
            while (t <= bucket_max && bc_decode(d, &ch->up[cls][ref][t])) t++;
        } else {
            t = t0;
            while (t > 0 && bc_decode(d, &ch->down[cls][ref][t])) t--;
        }
        if (t == 0) return 0;
        b = t - 1;
        negative = bc_decode(d, &ch->sign[cls][sctx]);
    }
    uint64_t a = b > 0;
    if (b >= 2) {
        int top = bc_decode(d, &ch->mantissa[cls][b][0]);
        a = 2 | (uint64_t)top;
        if (b >= 3) {
            a = (a << 1) | (uint64_t)bc_decode(d, &ch->mantissa[cls][b][1 + top]);
            a = (a << (b - 3)) | bc_decode_direct(d, b - 3);
        }
    }
    int64_t m = (int64_t)a + 1;
    return negative ? -m : m;
}

/* ---- Version 4 ---------------------------------------------------------------------------- */

/* One modelled bit, either side (e for the encoder, d for the decoder, the other NULL); returns it. */
static ALWAYS_INLINE int code_bit(bc_encoder *e, bc_decoder *d, bc_bit *m, int bit) {
    if (e != NULL) {
        bc_encode_weighed(e, m, bit, 3);
        return bit;
    }
    return bc_decode_weighed(d, m, 3);
}

/* ---- Version 5 ---------------------------------------------------------------------------- */

/* The logistic function on 12-bit probabilities, integer (lpaq1, Mahoney): squash(d) = 4096 / (1 + e^-d/256)
 * for d in -2047..2047, interpolated between 33 nodes; stretch its inverse, by table. */
static int squash12(int d) {
    static const int t[33] = {1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047,
                              2549, 2994, 3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089,
                              4092, 4093, 4094};
    if (d > 2047) return 4095;
    if (d < -2047) return 1;
    int i = (d + 2048) >> 7, w = (d + 2048) & 127;
    return (t[i] * (128 - w) + t[i + 1] * w + 64) >> 7;
}

static int16_t stretch12[4096];

static void init_stretch(void) {
    int pi = 0;
    for (int x = -2047; x <= 2047; x++) {
        int v = squash12(x);
        for (int j = pi; j <= v; j++) stretch12[j] = (int16_t)x;
        pi = v + 1;
    }
    for (int j = pi; j < 4096; j++) stretch12[j] = 2047;
}

/* Every row starts as the identity: node j at squash((j - 16) 128), so that the estimate is at first
 * the primary one. */
static void init_sse(Channel *ch) {
    uint16_t identity[SSE_BINS];
    for (int j = 0; j < SSE_BINS; j++) identity[j] = (uint16_t)(squash12((j - 16) * 128) * 16);
    for (int l = 0; l < N_SSE_LEVEL; l++)
        for (int r = 0; r < N_SSE_TOKEN; r++) memcpy(ch->sse_token[l][r], identity, sizeof identity);
    for (int s = 0; s < N_SSE_SIDE; s++)
        for (int l = 0; l < N_SSE_LEVEL; l++)
            for (int k = 0; k < 2; k++) memcpy(ch->sse_sign[s][l][k], identity, sizeof identity);
}

/* A modelled bit, either side, through a secondary estimation (SSE, Mahoney's APM in lpaq1): the
 * primary P(1) p of the bit's adaptive model (version 4's weighing) is stretched, s = stretch(p / 16)
 * + 2048, and falls between nodes j = s / 128 and j + 1 of the row; their interpolation a, which
 * learns how p is off in the row's context, is averaged with p:
 *
 *     P(1) = clamp((p + a + 1) / 2),   a = (row[j] (128 - s % 128) + row[j + 1] (s % 128)) / 128,
 *
 * then the model learns the bit as always and both nodes move 2^-SSE_RATE of the way to it. */
static ALWAYS_INLINE int code_bit_sse(bc_encoder *e, bc_decoder *d, bc_bit *m, uint16_t *row, int bit) {
    const uint32_t p = bc_p1_weighed(m, 3);
    const int s = stretch12[p >> 4] + 2048, j = s >> 7, w = s & 127;
    const uint32_t a = ((uint32_t)row[j] * (uint32_t)(128 - w) + (uint32_t)row[j + 1] * (uint32_t)w) >> 7;
    uint32_t pf = (p + a + 1) >> 1;
    pf = pf < BC_PMIN ? BC_PMIN : pf > BC_ONE - BC_PMIN ? BC_ONE - BC_PMIN : pf;
    if (e != NULL) bc_encode_p(e, pf, bit);
    else bit = bc_decode_p(d, pf);
    bc_bit_update(m, bit);
    if (bit) {
        row[j] = (uint16_t)(row[j] + ((65535u - row[j]) >> SSE_RATE));
        row[j + 1] = (uint16_t)(row[j + 1] + ((65535u - row[j + 1]) >> SSE_RATE));
    } else {
        row[j] = (uint16_t)(row[j] - (row[j] >> SSE_RATE));
        row[j + 1] = (uint16_t)(row[j + 1] - (row[j + 1] >> SSE_RATE));
    }
    return bit;
}

/* A token bit (row: which one), in version 5 through its secondary estimation at the level. */
#define TOKEN_BIT(model, row, bit) \
    (version >= 5 ? code_bit_sse(e, d, model, ch->sse_token[level][row], bit) : code_bit(e, d, model, bit))

/* Version 4's q, either side: version 3's token, mantissa and direct bits, with the sign in
 * version 4's context (sign_context(), and whether |q| is 1).  The encoder passes v and gets it
 * back; the decoder passes 0 and gets the decoded v. */
static ALWAYS_INLINE int64_t code_q4(bc_encoder *e, bc_decoder *d, Channel *ch, int cls, int ref, int sctx,
                                     int bucket_max, int64_t v, const int version, int level, int side) {
    uint64_t a = v ? (uint64_t)(v < 0 ? -v : v) - 1 : 0;
    int t = v ? 1 + bit_length(a) : 0, i;
    int t0 = ch->start[cls] < bucket_max ? ch->start[cls] : bucket_max;
    if (TOKEN_BIT(&ch->first[cls][ref], 0, t > t0)) {
        i = t0 + 1;
        while (i <= bucket_max && TOKEN_BIT(&ch->up[cls][ref][i], 1 + i, t > i)) i++;
    } else {
        i = t0;
        while (i > 0 && TOKEN_BIT(&ch->down[cls][ref][i], 1 + N_TOKEN + i, t < i)) i--;
    }
    if (i == 0) return 0;
    const int b = i - 1;
    bc_bit *sign = &ch->sign4[2 * sctx + (b == 0)];
    const int negative = version >= 5 ? code_bit_sse(e, d, sign, ch->sse_sign[side][level][b == 0], v < 0)
                                      : code_bit(e, d, sign, v < 0);
    if (e == NULL) a = b > 0;
    if (b >= 2) {
        int top = code_bit(e, d, &ch->mantissa[cls][b][0], (int)((a >> (b - 2)) & 1));
        if (b >= 3) {
            int next = code_bit(e, d, &ch->mantissa[cls][b][1 + top], (int)((a >> (b - 3)) & 1));
            if (e != NULL) bc_encode_direct(e, (uint32_t)a, b - 3);
            else a = ((uint64_t)(4 | 2 * top | next) << (b - 3)) | bc_decode_direct(d, b - 3);
        } else if (e == NULL) {
            a = 2 | (uint64_t)top;
        }
    }
    int64_t m = (int64_t)a + 1;
    return negative ? -m : m;
}

/* 0, 1, 2 for q = 0, < 0, > 0. */
static ALWAYS_INLINE int sign3(int32_t q) { return q > 0 ? 2 : q < 0; }

/* Version 4's sign context (before the |q| = 1 bit), 0 .. N_SIGN4 / 2 - 1: the flip; the signs of q
 * at W, N, NW and NE (residuals come in patches of one sign); E's class / 16; and how far the
 * unrounded prediction lies from the rounded one (|frac| < 2/8, < 4/8, more; far from it, the sign
 * is nearly known). */
static ALWAYS_INLINE int sign_context(const Rows *r, int x, int flip, int cls, int64_t frac) {
    int k = flip * 3 + sign3(r->qcur[x - 1]);
    k = (k * 3 + sign3(r->qup[x])) * 3 + sign3(r->qup[x - 1]);
    k = (k * 3 + sign3(r->qup[x + 1])) * 4 + (cls < 48 ? cls >> 4 : 3);
    frac = frac < 0 ? -frac : frac;
    return k * 3 + (frac < 2 ? 0 : frac < 4 ? 1 : 2);
}

/* How many sub-predictions a sample blends: predictors()'s, and in version 4 lms_predict()'s last. */
static ALWAYS_INLINE int n_predictors(int version, int channels, int c) {
    if (version == 2) return channels == 1 ? 12 : c == 2 ? 11 : 9;
    if (version == 3) return channels == 1 ? 7 : c == 0 ? 4 : c == 1 ? 5 : 7;
    return channels == 1 ? 8 : c == 0 ? 8 : c == 1 ? 6 : 8;
}

/* The LMS's inputs of channel c rounded up to whole vectors of 8 (see LMS_LANES_MAX). */
static ALWAYS_INLINE int lms_lanes(int c) { return c == 0 ? 8 : 16; }

/* gcc: keep a short loop a loop until the vectoriser sees it (unrolled first, its widening products
 * stay scalar). */
#if defined(__GNUC__) && !defined(__clang__)
#define VECTOR_LOOP _Pragma("GCC unroll 1")
#else
#define VECTOR_LOOP
#endif

/* sum_i a_i b_i over lanes in 64 bits (|a_i b_i| < 2^58): exact, so the padding's zeros change
 * nothing.  wide: the loop built for AVX2 (see scan_encode), which multiplies 32-bit lanes to 64
 * bits; without it, unrolled scalar products are faster than its emulation. */
static ALWAYS_INLINE int64_t lms_dot(const int32_t *a, const int32_t *b, int lanes, const int wide) {
    int64_t s = 0;
    if (wide) {
        VECTOR_LOOP
        for (int i = 0; i < lanes; i++) s += (int64_t)a[i] * b[i];
    } else {
        for (int i = 0; i < lanes; i++) s += (int64_t)a[i] * b[i];
    }
    return s;
}

/* Version 4's adaptive linear sub-prediction of channel c at x, in ONE units: a normalised LMS
 * filter (Widrow and Hoff 1960; NLMS, Nagumo and Noda 1967) over the differences of the neighbours
 * to B = (W + N) / 2,
 *
 *     x ~ B + sum_i w_i u_i / 2,   u = (W - N, 2 NW - 2B, 2 NE - 2B, 2 NN - 2B, 2 WW - 2B, 2 NEE - 2B,
 *                                       and per channel j coded before c: 2 X_j - 2 B_j, W_j - N_j,
 *                                       2 NW_j - 2 B_j, 2 NE_j - 2 B_j),
 *
 * X_j the sample of channel j at this pixel.  Unlike the fixed sub-predictions it learns how far R
 * and B follow G at the pixel (a slope other than 1) and the image's own spatial weights; the blend
 * weighs it by its errors next door like any other.  Integer: weights in units of 2^-LMS_WB. */
static ALWAYS_INLINE int32_t lms_predict(Channel *ch, const Rows *rows, int c, int x, int64_t maxval, const int wide) {
    const int32_t *cur = rows[c].cur, *up = rows[c].up;
    const int32_t b2 = cur[x - 1] + up[x];
    int32_t *u = ch->lms_u;
    u[0] = cur[x - 1] - up[x];
    u[1] = 2 * up[x - 1] - b2;
    u[2] = 2 * up[x + 1] - b2;
    u[3] = 2 * rows[c].up2[x] - b2;
    u[4] = 2 * cur[x - 2] - b2;
    u[5] = 2 * up[x + 2] - b2;
    int n = 6;
    for (int j = 0; j < c; j++) {
        const int32_t *jc = rows[j].cur, *ju = rows[j].up;
        u[n++] = 2 * jc[x] - jc[x - 1] - ju[x];
        u[n++] = jc[x - 1] - ju[x];
        u[n++] = 2 * ju[x - 1] - jc[x - 1] - ju[x];
        u[n++] = 2 * ju[x + 1] - jc[x - 1] - ju[x];
    }
    const int64_t acc = lms_dot(ch->lms_w, u, lms_lanes(c), wide);
    ch->lms_acc = acc;
    ch->lms_base = b2;
    int64_t p = floor_shr(((int64_t)b2 << LMS_WB) + acc, LMS_WB + 1 - SHIFT);
    return (int32_t)(p < 0 ? 0 : p > ONE * maxval ? ONE * maxval : p);
}

/* After the sample: each weight moves by 2^-LMS_RATE of the filter's error times its input over the
 * inputs' power P (rounded up to a power of two, 2^L: a shift, not a division).  Version 4 computes
 * each step in 64 bits.  Version 5 splits the shift so that the per-weight work is 32-bit (one
 * vector instruction per 8 weights where the compiler has them): the error is brought to
 * e = err / 2^(L + 5 - k) once, clamped to |e| < 2^(29 - h), and each weight moves by
 * floor((e u_i + 2^(k-1)) / 2^k), with h = ceil(L / 2) (|u_i| < 2^h as u_i^2 < P) and k = h + 4. */
static ALWAYS_INLINE void lms_update(Channel *ch, int c, int32_t value, const int version, const int wide) {
    const int lanes = lms_lanes(c);
    const int32_t *u = ch->lms_u;
    int32_t *w = ch->lms_w;
    const int64_t err = ((int64_t)(2 * value - ch->lms_base) << LMS_WB) - ch->lms_acc;
    const uint64_t power = 4 + (uint64_t)lms_dot(u, u, lanes, wide);
    const int L = bit_length(power);
    if (version == 4) {
        const int n = 6 + 4 * c, s = L + LMS_RATE;
        const int64_t half = (int64_t)1 << (s - 1);
        for (int i = 0; i < n; i++) {
            int64_t v = w[i] + floor_shr(err * u[i] + half, s);
            w[i] = (int32_t)(v < -LMS_WMAX ? -LMS_WMAX : v > LMS_WMAX ? LMS_WMAX : v);
        }
        return;
    }
    const int h = (L + 1) / 2, k = h + 4;
    const int64_t e_max = ((int64_t)1 << (LMS_STEP_BITS - h)) - 1, e64 = floor_shr(err, L + LMS_RATE - k);
    const int32_t e = (int32_t)(e64 < -e_max ? -e_max : e64 > e_max ? e_max : e64);
    /* floor(v / 2^k) for |v| < 2^30 without shifting a negative number: v + 2^30 shifted as unsigned. */
    const uint32_t offset = ((uint32_t)1 << 30) + ((uint32_t)1 << (k - 1));
    const int32_t back = (int32_t)1 << (30 - k);
    for (int i = 0; i < lanes; i++) {
        int32_t v = w[i] + ((int32_t)(((uint32_t)(e * u[i]) + offset) >> k) - back);
        w[i] = v < -LMS_WMAX ? -LMS_WMAX : v > LMS_WMAX ? LMS_WMAX : v;
    }
}

/* Code (or decode) the sample of channel c at (x, y); version, C and c are constants where this is
 * expanded, so that the loops over the sub-predictions unroll.  Returns 0, or -1 for a q that
 * decodes to a sample outside -K .. maxval + K (a corrupt stream).  *q_ref: G's q at this pixel. */
static ALWAYS_INLINE int code_sample(Scan *s, const Rows *rows, const uint16_t *src, uint16_t *out, bc_encoder *enc,
                                     bc_decoder *dec, int x, int y, int64_t *q_ref, const int version, const int C,
                                     const int c, const int encoding, const int few_colours, const int wide) {
    const int colour_map = few_colours && c > 0;
    const int H = s->height, W = s->width, K = s->max_error, unit = s->unit;
    const int64_t maxval = s->maxval;
    const size_t plane = (size_t)H * (size_t)W;
    int32_t p[MAX_PRED]; /* |p| < 2^21 for 16-bit samples */
    uint32_t sum[MAX_PRED];
    Channel *ch = &s->ch[c];
    const int np = n_predictors(version, C, c); /* a constant where expanded */
    const Rows *r = &rows[c];
    int32_t *cur = r->cur, *up = r->up, *up2 = r->up2;
    predictors(rows, version, C, c, x, p);
    if (version >= 4) p[np - 1] = lms_predict(ch, rows, c, x, maxval, wide);

    /* Where R (or B) has equalled G at W, N, NW and NE (gray content in a colour image, lossless
     * or not), G' is the prediction and q has a class of its own: no blend, no bias correction. */
    const int32_t *g = rows[0].cur, *gup = rows[0].up;
    const int gray = version > 2 && c > 0 && cur[x - 1] == g[x - 1] && up[x] == gup[x] && up[x - 1] == gup[x - 1]
                  && up[x + 1] == gup[x + 1];
    int64_t blend = 0, expected = 0, correction = 0, pred = g[x];
    int bctx = 0, bctx2 = 0, cls = GRAY_CLASS;
    /* Version 4 with the colour map (palette-like images: a colour overlay on gray): where the map
     * predicted R (or B) exactly at W and N, its entry for G' is the prediction, in a class of its
     * own; no blend or bias correction. */
    const int mapped = colour_map && !gray && r->hits[x - 1] && r->hup[x] && ch->map[g[x]] >= 0;
    if (mapped) {
        pred = ch->map[g[x]];
        cls = MAP_CLASS;
    }
    /* With the option, R (or B) that is not gray by its neighbours may still be: one bit says whether
     * it is G' (within K), in the context of how many of W, N, NW and NE were gray and (B) whether R
     * is G' at the pixel, (R) whether the map predicts it.  Edges of a colour overlay on gray. */
    int flagged = 0;
    if (colour_map && !gray) {
        int n = (cur[x - 1] == g[x - 1]) + (up[x] == gup[x]) + (up[x - 1] == gup[x - 1]) + (up[x + 1] == gup[x + 1]);
        bc_bit *m = &ch->gray_bit[n][c == 2 ? rows[1].cur[x] == g[x] : mapped];
        int bit = encoding ? llabs((int64_t)src[c * plane + (size_t)y * W + x] - g[x]) <= K : 0;
        flagged = code_bit(encoding ? enc : NULL, encoding ? NULL : dec, m, bit);
    }
    if (flagged) {
        pred = g[x];
    } else if (!gray && !mapped) {
        /* Blend: each sub-prediction weighted by 1 / S^2, S its error summed next door. */
        const uint32_t *ew = r->ecur + (size_t)(x - 1) * np, *eww = r->ecur + (size_t)(x - 2) * np;
        const uint32_t *ea = r->above + (size_t)x * np;
        uint32_t least = UINT32_MAX;
        for (int k = 0; k < np; k++) {
            sum[k] = ea[k] + ew[k] + (eww[k] >> 1) + ONE;
            least = sum[k] < least ? sum[k] : least;
        }
        int sh = bit_length(least) - 7;
        sh = sh > 0 ? sh : 0;
        int64_t total = 0, blend_num = 0, expected_num = 0;
        for (int k = 0; k < np; k++) {
            uint32_t m = sum[k] >> sh;
            int64_t w = inverse_square[m < N_INVERSE ? m : 0]; /* 0 for m < 8 and m >= N_INVERSE */
            total += w;
            blend_num += w * (int64_t)p[k];
            expected_num += w * (int64_t)sum[k];
        }
        blend = floor_div(blend_num, total);
        expected = floor_div(expected_num, total) - ONE;

        /* CALIC's error feedback: the mean error of the blend in its texture and energy context. */
        int64_t n8 = ONE * (int64_t)up[x], w8 = ONE * (int64_t)cur[x - 1];
        int64_t nn8 = ONE * (int64_t)up2[x], ww8 = ONE * (int64_t)cur[x - 2];
        int texture = (n8 > blend) | (w8 > blend) << 1 | (ONE * (int64_t)up[x - 1] > blend) << 2
                    | (ONE * (int64_t)up[x + 1] > blend) << 3 | (nn8 > blend) << 4 | (ww8 > blend) << 5
                    | (2 * n8 - nn8 > blend) << 6 | (2 * w8 - ww8 > blend) << 7;
        const int64_t scaled = unit == 1 ? expected : expected / unit; /* E in steps of 2K + 1 */
        int energy = bit_length((uint64_t)(scaled >> SHIFT));
        bctx = texture * 8 + (energy < 7 ? energy : 7);
        int32_t count = ch->bias_count[bctx];
        if (version >= 4) {
            /* The mean error in two contexts pooled: CALIC's, and the signs of q at W and N with the
             * error energy.  Each sum holds fewer than BIAS_RESET4 errors clipped to E / 5 + 1 < 2^21,
             * so |2 (sum + sum2)| < 2^30: 32-bit arithmetic is exact, and one division serves both. */
            bctx2 = (sign3(r->qcur[x - 1]) * 3 + sign3(r->qup[x])) * 8 + (energy < 7 ? energy : 7);
            int32_t n = count + ch->bias2_count[bctx2];
            int32_t sum = (int32_t)(ch->bias_sum[bctx] + ch->bias2_sum[bctx2]);
            correction = n > 0 ? floor_div32(2 * sum + n, 2 * n) : 0;
        } else {
            correction = count > 0 ? floor_div(2 * ch->bias_sum[bctx] + count, 2 * (int64_t)count) : 0;
        }
        pred = floor_shr(blend + correction + ONE / 2, SHIFT);
        pred = pred < 0 ? 0 : pred > maxval ? maxval : pred;
        if (c > 0 && K > 0) {
            /* Snap to G' where R (or B) has equalled G at W and N: gray content stays gray. */
            int64_t gv = g[x];
            int64_t dist = llabs((int64_t)cur[x - 1] - g[x - 1]) + llabs((int64_t)up[x] - gup[x]);
            if (dist <= (K + 1) / 2 && llabs(pred - gv) <= K) pred = gv;
        }

        if (version >= 4) {
            /* E mixed 3 : 1 with the final errors next door, 5 q weighed as E's 5 errors (q of this
             * channel at W and N 3/2 each, at NW and NE 1 each; in steps of 2K + 1). */
            const int64_t near = (int64_t)ONE * (3 * (llabs(r->qcur[x - 1]) + llabs(r->qup[x]))
                                                 + 2 * (llabs(r->qup[x - 1]) + llabs(r->qup[x + 1]))) / 2;
            cls = log_class((6 * scaled + 2 * near) / 8);
        } else {
            cls = log_class(scaled);
        }
    }
    /* With the option, the match mode: where W, N, NE and NW show fewer than four distinct values
     * (text, graphics, flat areas), bits say whether x is (within K) the first, second, ... of them,
     * in the context of their pattern of equalities, the value's rank and E's class / 16; a matched
     * sample codes no q (its q counts as 0) and leaves the bias statistics as they were. */
    int matched = 0;
    if (few_colours && !gray && !flagged && !mapped) {
        const int32_t w = cur[x - 1], n = up[x], nw = up[x - 1], ne = up[x + 1];
        int32_t cand[4];
        int d = 0;
        cand[d++] = w;
        if (n != w) cand[d++] = n;
        if (ne != w && ne != n) cand[d++] = ne;
        if (nw != w && nw != n && nw != ne) cand[d++] = nw;
        if (d < 4) {
            const int pat = (n == w) | (nw == w) << 1 | (nw == n) << 2 | (ne == w) << 3 | (ne == n) << 4 | (ne == nw) << 5;
            const int64_t sv = encoding ? (int64_t)src[c * plane + (size_t)y * W + x] : 0;
            for (int i = 0; i < d; i++) {
                if (code_bit(encoding ? enc : NULL, encoding ? NULL : dec, &ch->match_bit[pat][i][cls >> 4],
                             encoding ? llabs(sv - cand[i]) <= K : 0)) {
                    matched = 1;
                    pred = cand[i];
                    break;
                }
            }
        }
    }
    int ref = 0;
    if (c > 0) {
        /* G's |q| at the pixel; in version 4, for B, R's. */
        const int64_t qr = version >= 4 && c == 2 ? rows[1].qcur[x] : *q_ref;
        int r = bit_length((uint64_t)(qr < 0 ? -qr : qr));
        ref = r < N_REF - 1 ? r : N_REF - 1;
    }
    /* CALIC's sign flipping: q's likelier sign is the side the unrounded prediction lies on. */
    int flip = !gray && !mapped && !flagged && blend + correction < pred * ONE;
    /* Residual signs come in patches: the sign's context adds those of q at W and N. */
    const int32_t qw = r->qcur[x - 1], qn = r->qup[x];
    int sctx = version >= 4 ? sign_context(r, x, flip, cls, gray || mapped || flagged ? 0 : blend + correction - pred * ONE)
                            : flip * 9 + (qw > 0 ? 2 : qw < 0) * 3 + (qn > 0 ? 2 : qn < 0);
    /* Version 5's secondary estimation contexts (see code_bit_sse): how far the linear
     * sub-prediction L lies from the blend against E (where the two disagree, the blend is less sure
     * than its errors next door say) and, for the sign, on which side of the unrounded prediction L
     * lies, seen from q's flipped sign (the blend weighs L by its past errors, not by where it points
     * now).  Samples not blended take level 0, side 0. */
    int sse_level = 0, sse_side = 0;
    if (version >= 5 && !gray && !mapped && !flagged) {
        const int64_t apart = llabs((int64_t)p[np - 1] - blend);
        sse_level = (apart > expected / 4) + (apart > expected / 2) + (apart > expected);
        const int64_t side = flip ? blend + correction - p[np - 1] : p[np - 1] - (blend + correction);
        sse_side = side > 0 ? 2 : side < 0;
    }
    int64_t q, value;
    if (flagged || matched) {
        q = 0;
    } else if (encoding) {
        int64_t diff = (int64_t)src[c * plane + (size_t)y * W + x] - pred;
        q = diff >= 0 ? (diff + K) / unit : -((-diff + K) / unit);
        if (version >= 4) code_q4(enc, NULL, ch, cls, ref, sctx, s->bucket_max, flip ? -q : q, version, sse_level, sse_side);
        else encode_q(enc, ch, version, cls, ref, sctx, s->bucket_max, flip ? -q : q);
    } else {
        q = version >= 4 ? code_q4(NULL, dec, ch, cls, ref, sctx, s->bucket_max, 0, version, sse_level, sse_side)
                         : decode_q(dec, ch, version, cls, ref, sctx, s->bucket_max);
        q = flip ? -q : q;
    }
    value = pred + q * unit;
    if (value < -K || value > maxval + K) return -1;
    value = value < 0 ? 0 : value > maxval ? maxval : value;
    if (c == 0) *q_ref = q;
    r->qcur[x] = (int32_t)q;
    cur[x] = (int32_t)value;
    out[c * plane + (size_t)y * W + x] = (uint16_t)value;

    if (version >= 4) lms_update(ch, c, (int32_t)value, version, wide);
    uint32_t *e = r->ecur + (size_t)x * np;
    const int32_t v8 = ONE * (int32_t)value;
    for (int k = 0; k < np; k++) {
        int32_t d = v8 - p[k];
        d = d < 0 ? -d : d;
        e[k] = (uint32_t)(d < ERR_CAP ? d : ERR_CAP);
    }
    if (colour_map) {
        /* The map learns the values that are not gray. */
        int32_t *entry = &ch->map[g[x]];
        r->hits[x] = *entry == value;
        if (value != g[x]) *entry = (int32_t)value;
    }
    if (!gray && !mapped && !flagged && !matched) {
        int64_t limit = expected / 5 + ONE, err = ONE * value - blend;
        err = err < -limit ? -limit : err > limit ? limit : err;
        ch->bias_sum[bctx] += err;
        if (++ch->bias_count[bctx] >= (version >= 4 ? BIAS_RESET4 : BIAS_RESET)) {
            ch->bias_sum[bctx] = floor_shr(ch->bias_sum[bctx], 1);
            ch->bias_count[bctx] >>= 1;
        }
        if (version >= 4) {
            ch->bias2_sum[bctx2] += err;
            if (++ch->bias2_count[bctx2] >= BIAS_RESET4) {
                ch->bias2_sum[bctx2] = floor_shr(ch->bias2_sum[bctx2], 1);
                ch->bias2_count[bctx2] >>= 1;
            }
        }
    }

    /* Edges: outside neighbours repeat the nearest sample coded (first column: W = N;
     * last column: NE = N; first row: N = NE = NW = W). */
    if (x == 0 && y + 1 < H) r->next[-1] = r->next[-2] = (int32_t)value;
    if (x == W - 1) cur[W] = (int32_t)value;
    if (y == 0) {
        up[x + 1] = up[x + 2] = up2[x + 1] = up2[x + 2] = (int32_t)value;
    }
    return 0;
}

/* The coding loop of both sides, for one coder version and channel count (constants where it is
 * expanded).  Encoding: src holds the samples and out receives the reconstruction; decoding: out
 * receives the samples.  Returns 0, or -1 for a corrupt stream. */
static ALWAYS_INLINE int scan_version(Scan *s, const uint16_t *src, uint16_t *out, bc_encoder *enc,
                                      bc_decoder *dec, const int version, const int C, const int encoding,
                                      const int few_colours, const int wide) {
    Rows rows[3];
    for (int y = 0; y < s->height; y++) {
        for (int c = 0; c < C; c++) start_row(s, c, y, &rows[c]);
        for (int x = 0; x < s->width; x++) {
            int64_t q_ref = 0;
            if (code_sample(s, rows, src, out, enc, dec, x, y, &q_ref, version, C, 0, encoding, few_colours, wide) < 0)
                return -1;
            if (C == 3 && (code_sample(s, rows, src, out, enc, dec, x, y, &q_ref, version, C, 1, encoding, few_colours, wide) < 0
                           || code_sample(s, rows, src, out, enc, dec, x, y, &q_ref, version, C, 2, encoding, few_colours, wide) < 0))
                return -1;
        }
    }
    return 0;
}

/* One side's loops for each coder version, channel count and option (all constants where
 * scan_version is expanded). */
static ALWAYS_INLINE int scan(Scan *s, const uint16_t *src, uint16_t *out, bc_encoder *enc, bc_decoder *dec,
                              const int encoding, const int wide) {
    const int C = s->channels;
#define SCAN(v, c, few) scan_version(s, src, out, enc, dec, v, c, encoding, few, wide)
    switch (s->version) {
    case 2: return C == 1 ? SCAN(2, 1, 0) : SCAN(2, 3, 0);
    case 3: return C == 1 ? SCAN(3, 1, 0) : SCAN(3, 3, 0);
    case 4:
        if (C == 1) return s->few_colours ? SCAN(4, 1, 1) : SCAN(4, 1, 0);
        return s->few_colours ? SCAN(4, 3, 1) : SCAN(4, 3, 0);
    default:
        if (C == 1) return s->few_colours ? SCAN(5, 1, 1) : SCAN(5, 1, 0);
        return s->few_colours ? SCAN(5, 3, 1) : SCAN(5, 3, 0);
    }
#undef SCAN
}

/* With gcc on x86-64, the coding loops are built twice, for any x86-64 and for AVX2 (taken where the
 * processor has it): there the LMS's loops of 8 and 16 lanes become a few vector instructions.
 * Integer arithmetic: both builds write and read the same streams (-DLIC_GENERIC_ONLY builds the
 * generic loops alone, to compare). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(LIC_GENERIC_ONLY)
#define WIDE_BUILD 1
static int wide_cpu; /* set once, when the module loads */

__attribute__((target("avx2"))) static int scan_encode_wide(Scan *s, const uint16_t *src, uint16_t *out,
                                                             bc_encoder *enc) {
    return scan(s, src, out, enc, NULL, 1, 1);
}

__attribute__((target("avx2"))) static int scan_decode_wide(Scan *s, uint16_t *out, bc_decoder *dec) {
    return scan(s, NULL, out, NULL, dec, 0, 1);
}
#endif

static int scan_encode(Scan *s, const uint16_t *src, uint16_t *out, bc_encoder *enc) {
#ifdef WIDE_BUILD
    if (wide_cpu) return scan_encode_wide(s, src, out, enc);
#endif
    return scan(s, src, out, enc, NULL, 1, 0);
}

static int scan_decode(Scan *s, uint16_t *out, bc_decoder *dec) {
#ifdef WIDE_BUILD
    if (wide_cpu) return scan_decode_wide(s, out, dec);
#endif
    return scan(s, NULL, out, NULL, dec, 0, 0);
}

/* Set up the scan's buffers; -1 (MemoryError set) on failure. */
static int scan_open(Scan *s, int version, int channels, int height, int width, int maxval, int max_error,
                     int few_colours) {
    s->version = version;
    s->few_colours = few_colours;
    s->channels = channels;
    s->height = height;
    s->width = width;
    s->maxval = maxval;
    s->max_error = max_error;
    s->unit = 2 * max_error + 1;
    s->bucket_max = bit_length((uint64_t)(maxval > 1 ? maxval - 1 : 0));
    s->stride = (size_t)width + 2 * PAD;
    s->ch = (Channel *)calloc((size_t)channels, sizeof(Channel));
    if (s->ch == NULL) goto fail;
    for (int c = 0; c < channels; c++) {
        Channel *ch = &s->ch[c];
        ch->n_pred = n_predictors(version, channels, c);
        init_models(ch);
        if (version > 2) init_token_models(ch);
        if (version >= 5) init_sse(ch);
        ch->rows = (int32_t *)malloc(RING * s->stride * sizeof(int32_t));
        ch->err = (uint32_t *)calloc(RING * s->stride * (size_t)ch->n_pred, sizeof(uint32_t));
        ch->qs = (int32_t *)calloc(RING * s->stride, sizeof(int32_t));
        ch->above = (uint32_t *)calloc(s->stride * (size_t)ch->n_pred, sizeof(uint32_t));
        if (ch->rows == NULL || ch->err == NULL || ch->qs == NULL || ch->above == NULL) goto fail;
        if (few_colours && c > 0) {
            ch->hits = (uint8_t *)calloc(RING * s->stride, 1);
            ch->map = (int32_t *)malloc(((size_t)maxval + 1) * sizeof(int32_t));
            if (ch->hits == NULL || ch->map == NULL) goto fail;
            for (int v = 0; v <= maxval; v++) ch->map[v] = -1;
        }
        for (size_t i = 0; i < RING * s->stride; i++) ch->rows[i] = (maxval + 1) / 2;
    }
    return 0;
fail:
    PyErr_NoMemory();
    return -1;
}

static void scan_close(Scan *s) {
    if (s->ch == NULL) return;
    for (int c = 0; c < s->channels; c++) {
        free(s->ch[c].rows);
        free(s->ch[c].err);
        free(s->ch[c].above);
        free(s->ch[c].qs);
        free(s->ch[c].hits);
        free(s->ch[c].map);
    }
    free(s->ch);
    s->ch = NULL;
}

static PyObject *StreamError;

/* The arguments of encode and decode: an input buffer, a writable uint16 output of the image's
   size, and the geometry, checked. */
typedef struct {
    Py_buffer in, out;
    int channels, height, width, maxval, max_error, version, options;
} Call;

/* Version 4's options byte, the first of its stream: bit 0 the tools for few colours; the other bits
 * are reserved, 0. */
#define OPTION_FEW_COLOURS 1

/* Checks the geometry and that a buffer of len bytes holds channels x height x width uint16 samples. */
static int check_geometry(int version, int channels, int height, int width, int maxval, int max_error, Py_ssize_t len) {
    if (version < 2 || version > 5) {
        PyErr_SetString(PyExc_ValueError, "lic-exact: coder version must be 2, 3, 4 or 5");
        return -1;
    }
    if (!(channels == 1 || channels == 3) || height < 1 || width < 1 || maxval < 1 || maxval > 65535
        || max_error < 0 || max_error > maxval) {
        PyErr_SetString(PyExc_ValueError, "lic-exact: channels must be 1 or 3, sizes positive, "
                                          "maxval in 1..65535 and max_error in 0..maxval");
        return -1;
    }
    if ((uint64_t)height * (uint64_t)width > ((uint64_t)1 << 40) / (uint64_t)channels
        || (uint64_t)len != (uint64_t)channels * height * width * 2) {
        PyErr_SetString(PyExc_ValueError, "lic-exact: sample buffers must hold channels x height x width uint16");
        return -1;
    }
    return 0;
}

/* Parses and checks a call; on failure the buffers are released and an exception is set. */
static int parse_call(PyObject *args, Call *c) {
    c->version = 2;
    c->options = 0;
    if (!PyArg_ParseTuple(args, "y*w*iiiii|ii", &c->in, &c->out, &c->channels, &c->height, &c->width, &c->maxval,
                          &c->max_error, &c->version, &c->options))
        return -1;
    if (c->options != 0 && (c->version < 4 || c->options != OPTION_FEW_COLOURS)) {
        PyErr_SetString(PyExc_ValueError, "lic-exact: the only option is version 4's and 5's few colours (1)");
        PyBuffer_Release(&c->in);
        PyBuffer_Release(&c->out);
        return -1;
    }
    if (check_geometry(c->version, c->channels, c->height, c->width, c->maxval, c->max_error, c->out.len) < 0) {
        PyBuffer_Release(&c->in);
        PyBuffer_Release(&c->out);
        return -1;
    }
    return 0;
}

static PyObject *encode(PyObject *self, PyObject *args) {
    Call c;
    if (parse_call(args, &c) < 0) return NULL;
    PyObject *result = NULL;
    Scan s = {0};
    bc_encoder e = {0};
    if (c.in.len != c.out.len) {
        PyErr_SetString(PyExc_ValueError, "lic-exact: buffers differ in size");
        goto done;
    }
    const uint16_t *samples = (const uint16_t *)c.in.buf;
    for (Py_ssize_t i = 0; i < c.in.len / 2; i++) {
        if (samples[i] > c.maxval) {
            PyErr_SetString(PyExc_ValueError, "lic-exact: a sample exceeds maxval");
            goto done;
        }
    }
    if (scan_open(&s, c.version, c.channels, c.height, c.width, c.maxval, c.max_error, c.options & OPTION_FEW_COLOURS) < 0)
        goto done;
    bc_encoder_init(&e, (size_t)c.in.len / 4 + 1024);
    Py_BEGIN_ALLOW_THREADS
    scan_encode(&s, samples, (uint16_t *)c.out.buf, &e);
    bc_encoder_finish(&e);
    Py_END_ALLOW_THREADS
    if (e.failed) {
        PyErr_NoMemory();
        goto done;
    }
    if (c.version >= 4) { /* the options byte, then the range coder's stream */
        result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)e.size + 1);
        if (result != NULL) {
            PyBytes_AS_STRING(result)[0] = (char)c.options;
            memcpy(PyBytes_AS_STRING(result) + 1, e.buf, e.size);
        }
    } else {
        result = PyBytes_FromStringAndSize((const char *)e.buf, (Py_ssize_t)e.size);
    }
done:
    free(e.buf);
    scan_close(&s);
    PyBuffer_Release(&c.in);
    PyBuffer_Release(&c.out);
    return result;
}

static PyObject *decode(PyObject *self, PyObject *args) {
    Call c;
    if (parse_call(args, &c) < 0) return NULL;
    PyObject *result = NULL;
    Scan s = {0};
    bc_decoder d;
    int status = 0;
    const uint8_t *stream = (const uint8_t *)c.in.buf;
    size_t size = (size_t)c.in.len;
    int options = 0;
    if (c.version >= 4) {
        options = size > 0 ? stream[0] : -1;
        if (options != 0 && options != OPTION_FEW_COLOURS) {
            PyErr_SetString(StreamError, "corrupt: residual stream without a valid options byte");
            goto done;
        }
        stream++;
        size--;
    }
    if (bc_decoder_init(&d, stream, size) < 0) {
        PyErr_SetString(StreamError, "corrupt: residual stream too short or without its leading zero byte");
        goto done;
    }
    if (scan_open(&s, c.version, c.channels, c.height, c.width, c.maxval, c.max_error, options) < 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    status = scan_decode(&s, (uint16_t *)c.out.buf, &d);
    Py_END_ALLOW_THREADS
    int end = status == 0 ? bc_decoder_finish(&d) : 0;
    if (status < 0)
        PyErr_SetString(StreamError, "corrupt: residual decodes to a sample outside the stored range");
    else if (end < 0)
        PyErr_SetString(StreamError, end == -1   ? "corrupt: residual stream ends early"
                                     : end == -2 ? "corrupt: residual stream has data left over"
                                                 : "corrupt: residual stream does not end as its encoder left it");
    else
        result = Py_NewRef(Py_None);
done:
    scan_close(&s);
    PyBuffer_Release(&c.in);
    PyBuffer_Release(&c.out);
    return result;
}

static PyMethodDef methods[] = {
    {"encode", encode, METH_VARARGS,
     "encode(samples, reconstruction, channels, height, width, maxval, max_error, version=2, options=0) -> bytes\n\n"
     "Code uint16 samples (channel-major, coding order) with coder lic-exact-<version> (2, 3, 4 or 5; options: "
     "version 4's and 5's tools for few colours, 1); writes the decoder's reconstruction."},
    {"decode", decode, METH_VARARGS,
     "decode(stream, samples, channels, height, width, maxval, max_error, version=2) -> None\n\n"
     "Decode into a writable uint16 buffer; StreamError for a corrupt stream."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_exact2",
                                    "lic-exact-2, -3, -4 and -5: the coding loop (codec/lossless/exact2.py).",
                                    -1, methods};

PyMODINIT_FUNC PyInit__exact2(void) {
    init_tables();
    init_stretch();
#ifdef WIDE_BUILD
    __builtin_cpu_init();
    wide_cpu = __builtin_cpu_supports("avx2");
#endif
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    StreamError = PyErr_NewException("codec.lossless._exact2.StreamError", PyExc_ValueError, NULL);
    if (StreamError == NULL || PyModule_AddObjectRef(m, "StreamError", StreamError) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
