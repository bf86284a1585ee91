/* NumPy's random draws made on the GPU (svperturb.device_draws): the values of
   numpy.random.Generator(PCG64(state)).standard_normal and .uniform, bit for bit, one thread per
   seed chunk. CUDA C compiled by NVRTC through CuPy; the same text is plain C (the test suite
   compiles it with the C compiler, its chunks a loop, and runs it against NumPy on the CPU).

   pcg64_draws(streams, plan, tables, ki, out, tail_at, tail_u, tails, tail_capacity, uncertain,
               gaussian, low, range, scale, r, inverse_r, tolerance, chunks)
     streams  4 per chunk: PCG64's 128-bit state and increment (high, low, high, low) as NumPy
              holds them before the chunk's first draw.
     plan     3 per chunk: values drawn and dropped, values kept, index in out of the first kept.
     out      the kept values times scale.
     gaussian 1: standard_normal; 0: low + range U, NumPy's uniform(low, low + range).

   PCG64 (O'Neill's PCG XSL RR 128/64, as NumPy): state <- state M + increment mod 2^128, then the
   output is (high ^ low) rotated right by the state's top 6 bits. U = (u >> 11) 2^-53.

   standard_normal is NumPy's (2.x) 256-strip ziggurat (Marsaglia and Tsang, J. Stat. Softw. 5(8),
   2000) with NumPy's tables wi, ki (read back from NumPy by svperturb.device_draws) and fi. A
   draw u gives the strip (its low 8 bits), a sign bit and a 52-bit integer a; x = a wi[strip] is returned
   at once where a < ki[strip] (99.3 %). Otherwise two comparisons decide, whose sides a GPU's exp
   and log1p may round differently from the C library's NumPy calls (CUDA: <= 1 ulp):
     strips 1..255, the wedge: accept x where fi[s-1] - fi[s] times U plus fi[s] < exp(-x^2 / 2);
     strip 0, the tail beyond r: xx = -log1p(-U1) / r, yy = -log1p(-U2) until 2 yy > xx^2, then
       +-(r + xx).
   Where the two sides of one of them differ by no more than `tolerance` (relative), the decision
   is not certain to be NumPy's and the chunk is marked in `uncertain`: svperturb.device_draws
   draws it again on the host. A tail value goes through log1p: the kernel writes its own, and
   records where (2 index + sign bit) and U1, from which device_draws writes the C library's. A
   chunk with more tail values than tail_capacity left is marked uncertain too.

   Products and sums that NumPy rounds one at a time are written so here (DMUL, DADD): a fused
   multiply-add would round them once. */

#ifdef __CUDACC_RTC__
#define EXPORT extern "C" __global__
#define DEVICE static __device__
#define DMUL(a, b) __dmul_rn(a, b)
#define DADD(a, b) __dadd_rn(a, b)
#define HIGH_PRODUCT(a, b) __umul64hi(a, b)
#define FOR_EACH_CHUNK(c, chunks)                                          \
    const long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x; \
    if (c < (chunks))
#define RESERVE(counter) atomicAdd(counter, 1ULL)
#else
#include <math.h>
#define EXPORT
#define DEVICE static
#define DMUL(a, b) ((a) * (b)) /* compiled with -ffp-contract=off */
#define DADD(a, b) ((a) + (b))
#define HIGH_PRODUCT(a, b) \
    ((unsigned long long)(((unsigned __int128)(a) * (unsigned __int128)(b)) >> 64))
#define FOR_EACH_CHUNK(c, chunks) for (long long c = 0; c < (chunks); ++c)
#define RESERVE(counter) ((*(counter))++)
#endif

#define MULTIPLIER_HIGH 0x2360ED051FC65DA4ULL /* PCG's default 128-bit multiplier */
#define MULTIPLIER_LOW 0x4385DF649FCCF645ULL
#define STRIPS 256

struct Pcg64 {
    unsigned long long high, low, increment_high, increment_low;
};

DEVICE unsigned long long next_uint64(struct Pcg64 *g)
{
    const unsigned long long low = g->low * MULTIPLIER_LOW;
    unsigned long long high = HIGH_PRODUCT(g->low, MULTIPLIER_LOW) + g->low * MULTIPLIER_HIGH
                              + g->high * MULTIPLIER_LOW;
    g->low = low + g->increment_low;
    high += g->increment_high + (g->low < low);
    g->high = high;
    const unsigned rotation = (unsigned)(high >> 58);
    const unsigned long long x = high ^ g->low;
    return (x >> rotation) | (x << ((64 - rotation) & 63));
}

DEVICE double next_double(struct Pcg64 *g)
{
    return (double)(next_uint64(g) >> 11) * (1.0 / 9007199254740992.0);
}

/* Whether a < b, with *uncertain set where they differ by no more than tolerance |b|. */
DEVICE int less(double a, double b, double tolerance, int *uncertain)
{
    if (fabs(a - b) <= tolerance * fabs(b))
        *uncertain = 1;
    return a < b;
}

struct Ziggurat {
    const double *wi, *fi;
    const unsigned long long *ki;
    double r, inverse_r, tolerance;
};

/* One standard normal; *tail_sign is -1 where it came from the tail (else 0 or 1: its sign bit),
   and *tail_u its U1. */
DEVICE double standard_normal(struct Pcg64 *g, const struct Ziggurat *z, int *uncertain,
                              int *tail_sign, double *tail_u)
{
    *tail_sign = -1;
    for (;;) {
        unsigned long long u = next_uint64(g);
        const int strip = (int)(u & 0xff);
        u >>= 8;
        const int sign = (int)(u & 1);
        const unsigned long long a = (u >> 1) & 0x000fffffffffffffULL;
        double x = DMUL((double)a, z->wi[strip]);
        if (sign)
            x = -x;
        if (a < z->ki[strip])
            return x;
        if (strip == 0) {
            for (;;) {
                const double u1 = next_double(g);
                const double xx = DMUL(-z->inverse_r, log1p(-u1));
                const double yy = -log1p(-next_double(g));
                if (less(DMUL(xx, xx), DADD(yy, yy), z->tolerance, uncertain)) {
                    *tail_sign = (int)((a >> 8) & 1);
                    *tail_u = u1;
                    return *tail_sign ? -DADD(z->r, xx) : DADD(z->r, xx);
                }
            }
        }
        const double wedge = DADD(DMUL(z->fi[strip - 1] - z->fi[strip], next_double(g)),
                                  z->fi[strip]);
        if (less(wedge, exp(DMUL(DMUL(-0.5, x), x)), z->tolerance, uncertain))
            return x;
    }
}

EXPORT void pcg64_draws(const unsigned long long *streams, const long long *plan,
                        const double *tables, const unsigned long long *ki, double *out,
                        long long *tail_at, double *tail_u, unsigned long long *tails,
                        long long tail_capacity, int *uncertain, int gaussian, double low,
                        double range, double scale, double r, double inverse_r,
                        double tolerance, long long chunks)
{
    FOR_EACH_CHUNK(c, chunks)
    {
        struct Pcg64 g = {streams[4 * c], streams[4 * c + 1], streams[4 * c + 2],
                          streams[4 * c + 3]};
        const struct Ziggurat z = {tables, tables + STRIPS, ki, r, inverse_r, tolerance};
        const long long dropped = plan[3 * c], kept = plan[3 * c + 1], first = plan[3 * c + 2];
        int unsure = 0;
        for (long long i = 0; i < dropped + kept; ++i) {
            double value;
            if (gaussian) {
                int sign;
                double u1;
                value = standard_normal(&g, &z, &unsure, &sign, &u1);
                if (sign >= 0 && i >= dropped) {
                    const unsigned long long slot = RESERVE(tails);
                    if ((long long)slot < tail_capacity) {
                        tail_at[slot] = 2 * (first + i - dropped) + sign;
                        tail_u[slot] = u1;
                    } else {
                        unsure = 1;
                    }
                }
            } else {
                value = DADD(low, DMUL(range, next_double(&g)));
            }
            if (i >= dropped)
                out[first + i - dropped] = DMUL(value, scale);
        }
        uncertain[c] = unsure;
    }
}
