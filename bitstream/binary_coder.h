/* Adaptive binary range coding: bits, each coded with a probability that learns as it codes.
 *
 * The coder is LZMA's carry-propagating range coder (Subbotin; Pavlov's LZMA SDK): a 32-bit
 * range, a bit splits it at
 *
 *     bound = (range >> 16) * P(bit = 0),   P in units of 2^-16, kept in [BC_PMIN, 2^16 - BC_PMIN]
 *
 * and bytes leave the top whenever the range falls below 2^24.  A stream starts with a zero byte
 * (the encoder's first cache byte) and is exactly as long as the decoder reads; the encoder flushes
 * its low end whole, so a decoder that read every symbol right ends with code 0.  A decoder can
 * thus refuse a stream that ends early, has bytes left over, or was changed in its last bytes.  Bits that are close to even chances go
 * "direct" (halving the range, no model).
 *
 * A modelled bit keeps two estimates of P(bit = 1) and codes with their mean (the two-rate
 * estimator of AV1 and VVC's CABAC), or with the slow one weighing three times the fast one (the
 * _weighed calls): one fast (rate 2^-BC_FAST), for local changes, and one that
 * starts as a running frequency over the prior's weight and its first observations and settles at
 * rate 2^-BC_SLOW_MAX, for the stationary part.  All integer: both sides compute the same
 * probabilities on every machine.
 *
 * Knows bits and probabilities, never images.  Header-only; used by codec/lossless/exact2.c.
 */
#ifndef LIC_BINARY_CODER_H
#define LIC_BINARY_CODER_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The coding calls sit in the hot loops of their callers, which gcc -O3 would otherwise leave as calls. */
#if defined(__GNUC__) || defined(__clang__)
#define BC_INLINE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define BC_INLINE static __forceinline
#else
#define BC_INLINE static inline
#endif

#define BC_PROB_BITS 16
#define BC_ONE (1u << BC_PROB_BITS)
#define BC_PMIN 48      /* the likelier bit costs at most -log2(1 - 48/65536) bits: no run is free */
#define BC_FAST 6       /* fast estimate: rate 1/64 */
#define BC_SLOW_MAX 9   /* slow estimate: ends at rate 1/512 */
#define BC_PRIOR 2      /* a prior weighs as much as this many observations */
#define BC_TOP (1u << 24)

/* A modelled bit: two estimates of P(bit = 1) in units of 2^-16, and the slow estimate's rate:
 * its shift, and how many more updates keep that shift (0: it stays). */
typedef struct {
    uint16_t fast, slow;
    uint8_t shift, left;
} bc_bit;

/* The number of bits of v: 0 for 0, 1 for 1, 2 for 2..3, ... */
static inline int bc_bit_length(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
    return v ? 64 - __builtin_clzll(v) : 0;
#else
    int n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
#endif
}

/* The slow estimate's rate after n observations (the prior's BC_PRIOR included): about 1 / (n + 2),
 * as the shift min(bit length of n + 1, BC_SLOW_MAX).  Shift s < BC_SLOW_MAX holds for the 2^(s-1)
 * values of n from 2^(s-1) - 1 to 2^s - 2, so a bit counts down the updates left at its shift
 * instead of computing it. */
static inline int bc_slow_shift(unsigned n) {
    int shift = bc_bit_length(n + 1);
    return shift < BC_SLOW_MAX ? shift : BC_SLOW_MAX;
}

static inline void bc_bit_init(bc_bit *b, uint32_t p1) {
    if (p1 < BC_PMIN) p1 = BC_PMIN;
    if (p1 > BC_ONE - BC_PMIN) p1 = BC_ONE - BC_PMIN;
    b->fast = b->slow = (uint16_t)p1;
    b->shift = (uint8_t)bc_slow_shift(BC_PRIOR);
    b->left = (uint8_t)(b->shift < BC_SLOW_MAX ? (1u << b->shift) - 1 - BC_PRIOR : 0);
}

/* P(bit = 1) to code with: the two estimates weighed (4 - slow) : slow, slow in quarters (2: their mean,
 * (fast + slow + 1) >> 1 exactly; 3: the slow one weighs three times the fast one). */
BC_INLINE uint32_t bc_p1_weighed(const bc_bit *b, const int slow) {
    uint32_t p = ((4 - slow) * (uint32_t)b->fast + slow * (uint32_t)b->slow + 2) >> 2;
    return p < BC_PMIN ? BC_PMIN : p > BC_ONE - BC_PMIN ? BC_ONE - BC_PMIN : p;
}

static inline uint32_t bc_p1(const bc_bit *b) { return bc_p1_weighed(b, 2); }

/* Move both estimates towards the bit seen; stays in 0..65535 (a step never covers the whole gap). */
BC_INLINE void bc_bit_update(bc_bit *b, int bit) {
    int s = b->shift;
    if (bit) {
        b->fast = (uint16_t)(b->fast + ((BC_ONE - b->fast) >> BC_FAST));
        b->slow = (uint16_t)(b->slow + ((BC_ONE - b->slow) >> s));
    } else {
        b->fast = (uint16_t)(b->fast - (b->fast >> BC_FAST));
        b->slow = (uint16_t)(b->slow - (b->slow >> s));
    }
    if (b->left && --b->left == 0) {
        b->shift = (uint8_t)(s + 1);
        b->left = (uint8_t)(s + 1 < BC_SLOW_MAX ? 1u << s : 0);
    }
}

/* ---- encoder ------------------------------------------------------------------------------ */

typedef struct {
    uint8_t *buf;
    size_t size, cap;
    uint64_t low;
    uint32_t range;
    uint8_t cache;
    uint64_t pending;  /* bytes held back for a carry: the cache byte and the 0xFF run after it */
    int failed;        /* out of memory: the stream is void */
} bc_encoder;

static inline void bc_encoder_init(bc_encoder *e, size_t capacity) {
    e->cap = capacity < 64 ? 64 : capacity;
    e->buf = (uint8_t *)malloc(e->cap);
    e->size = 0;
    e->failed = e->buf == NULL;
    e->low = 0;
    e->range = 0xFFFFFFFFu;
    e->cache = 0;
    e->pending = 1;
}

static inline void bc_put(bc_encoder *e, uint8_t byte) {
    if (e->size == e->cap) {
        if (e->failed) return;
        size_t cap = e->cap * 2;
        uint8_t *buf = (uint8_t *)realloc(e->buf, cap);
        if (buf == NULL) {
            e->failed = 1;
            return;
        }
        e->buf = buf;
        e->cap = cap;
    }
    e->buf[e->size++] = byte;
}

static inline void bc_shift_low(bc_encoder *e) {
    if ((uint32_t)e->low < 0xFF000000u || (e->low >> 32) != 0) {
        uint8_t carry = (uint8_t)(e->low >> 32);
        uint8_t byte = e->cache;
        do {
            bc_put(e, (uint8_t)(byte + carry));
            byte = 0xFF;
        } while (--e->pending != 0);
        e->cache = (uint8_t)(e->low >> 24);
    }
    e->pending++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}

/* A bit with P(bit = 1) = p1 (units of 2^-16, in [BC_PMIN, 2^16 - BC_PMIN]), no model. */
BC_INLINE void bc_encode_p(bc_encoder *e, uint32_t p1, int bit) {
    uint32_t bound = (e->range >> BC_PROB_BITS) * (BC_ONE - p1);
    if (bit) {
        e->low += bound;
        e->range -= bound;
    } else {
        e->range = bound;
    }
    while (e->range < BC_TOP) {
        e->range <<= 8;
        bc_shift_low(e);
    }
}

/* A modelled bit with P(bit = 1) = bc_p1_weighed(b, slow). */
BC_INLINE void bc_encode_weighed(bc_encoder *e, bc_bit *b, int bit, const int slow) {
    bc_encode_p(e, bc_p1_weighed(b, slow), bit);
    bc_bit_update(b, bit);
}

static inline void bc_encode(bc_encoder *e, bc_bit *b, int bit) { bc_encode_weighed(e, b, bit, 2); }

/* The n low bits of value, highest first, at even chances. */
static inline void bc_encode_direct(bc_encoder *e, uint32_t value, int n) {
    while (n-- > 0) {
        e->range >>= 1;
        if ((value >> n) & 1) e->low += e->range;
        while (e->range < BC_TOP) {
            e->range <<= 8;
            bc_shift_low(e);
        }
    }
}

static inline void bc_encoder_finish(bc_encoder *e) {
    for (int i = 0; i < 5; i++) bc_shift_low(e);
}

/* ---- decoder ------------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *buf;
    size_t size, pos;
    size_t overrun;  /* bytes read past the end (as zeros): the stream was cut short */
    uint32_t code, range;
} bc_decoder;

static inline uint8_t bc_next(bc_decoder *d) {
    if (d->pos < d->size) return d->buf[d->pos++];
    d->overrun++;
    return 0;
}

/* 0, or -1 when the stream cannot be one of ours (too short, or no leading zero byte). */
static inline int bc_decoder_init(bc_decoder *d, const uint8_t *buf, size_t size) {
    d->buf = buf;
    d->size = size;
    d->pos = 0;
    d->overrun = 0;
    d->range = 0xFFFFFFFFu;
    d->code = 0;
    if (size < 5 || buf[0] != 0) return -1;
    for (int i = 0; i < 5; i++) d->code = (d->code << 8) | bc_next(d);
    return 0;
}

/* A bit coded with P(bit = 1) = p1 (as bc_encode_p). */
BC_INLINE int bc_decode_p(bc_decoder *d, uint32_t p1) {
    uint32_t bound = (d->range >> BC_PROB_BITS) * (BC_ONE - p1);
    int bit;
    if (d->code < bound) {
        d->range = bound;
        bit = 0;
    } else {
        d->code -= bound;
        d->range -= bound;
        bit = 1;
    }
    while (d->range < BC_TOP) {
        d->range <<= 8;
        d->code = (d->code << 8) | bc_next(d);
    }
    return bit;
}

BC_INLINE int bc_decode_weighed(bc_decoder *d, bc_bit *b, const int slow) {
    const int bit = bc_decode_p(d, bc_p1_weighed(b, slow));
    bc_bit_update(b, bit);
    return bit;
}

static inline int bc_decode(bc_decoder *d, bc_bit *b) { return bc_decode_weighed(d, b, 2); }

/* 0 once every symbol is decoded from an intact stream; -1 (ended early), -2 (bytes left over) or
 * -3 (a final state the encoder cannot have left) otherwise. */
static inline int bc_decoder_finish(const bc_decoder *d) {
    return d->overrun ? -1 : d->pos != d->size ? -2 : d->code != 0 ? -3 : 0;
}

static inline uint32_t bc_decode_direct(bc_decoder *d, int n) {
    uint32_t value = 0;
    while (n-- > 0) {
        d->range >>= 1;
        int bit = d->code >= d->range;
        if (bit) d->code -= d->range;
        value = (value << 1) | (uint32_t)bit;
        while (d->range < BC_TOP) {
            d->range <<= 8;
            d->code = (d->code << 8) | bc_next(d);
        }
    }
    return value;
}

#endif
