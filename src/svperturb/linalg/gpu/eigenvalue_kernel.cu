/* Batched spectra of real n x n matrices (svperturb.eigenvalue_kernel): the streaming kernels
   below, one thread per matrix, and at the end the tile kernels, one block per matrix held in
   shared memory.
   CUDA C compiled by NVRTC through CuPy; the same text is plain C (the test suite compiles it with
   the C compiler, and its CUDA branch as C++ with CUDA's thread indices emulated, and runs both on
   the CPU).

   Layout "batch innermost": entry (i, j) of matrix b lives at a[(i n + j) batch + b], so that the
   threads of a warp, each on its own matrix, read and write consecutive addresses. Vectors of a
   matrix (work, values) likewise: entry i at [i batch + b].

   batched_symmetric_eigenvalues(a, work, values, n, batch)
     a       n x n per matrix, symmetric; its lower triangle is read, and overwritten.
     work    n entries per matrix.
     values  n per matrix: the eigenvalues, decreasing.
     1. Householder tridiagonalization (Golub and Van Loan, Matrix Computations, 4th ed., 8.3.1):
        for k = 0 .. n - 3, the reflector H = I - tau v v^T, v_0 = 1, that maps column k below the
        diagonal onto beta e_1 (LAPACK's dlarfg) is applied to the trailing block A22 from both
        sides: p = tau A22 v, w = p - (tau / 2) (p^T v) v, A22 <- A22 - v w^T - w v^T.
     2. tridiagonal_qr below.

   batched_singular_values(a, work, values, n, batch)
     a       n x n per matrix; overwritten.
     work    2 n entries per matrix (the reflectors, then the Golub-Kahan off-diagonal).
     values  2 n per matrix: the singular values s_1 >= ... >= s_n, then -s_n >= ... >= -s_1.
     1. Golub-Kahan bidiagonalization (ibid. 5.4.8; LAPACK's dgebd2): for k = 0 .. n - 1 a left
        reflector maps column k from the diagonal down onto d_k e_1, then a right reflector maps
        row k right of the diagonal onto f_k e_1. A = U B V^T, B upper bidiagonal.
     2. tridiagonal_qr on the 2n x 2n Golub-Kahan matrix: zero diagonal, off-diagonal
        (d_0, f_0, d_1, ..., f_(n-2), d_(n-1)), a permutation of [[0, B], [B^T, 0]], whose
        eigenvalues are +-s_i. This is the eigenvalue problem of the augmented matrix
        [[0, A], [A^T, 0]] reduced by the orthogonal diag(U, V) without ever forming it.

   tridiagonal_qr: implicit symmetric QR steps with Wilkinson's shift (ibid. 8.3.5) on the
   unreduced bottom block, deflating where |e_i| <= eps (|d_i| + |d_(i+1)|).

   Every matrix is first scaled by a power of two (exact) so that its largest entry lies in
   [1/2, 1), and the results are scaled back. All stages are backward stable: the results are the
   exact ones of a matrix within O(n eps ||A||_2) of A, the class of LAPACK's dsyev and dgesvd,
   which svperturb.engine's certificates assume. A matrix on which the QR steps do not converge
   (30 steps per eigenvalue in all), as one with a NaN or infinite entry, gets NaN throughout. */

#ifdef __CUDACC_RTC__
#define EXPORT extern "C" __global__
#define DEVICE static __device__
#define FOR_EACH_MATRIX(b, batch)                                           \
    const long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x; \
    if (b < (batch))
#else
#include <math.h>
#define EXPORT
#define DEVICE static
#define FOR_EACH_MATRIX(b, batch) for (long long b = 0; b < (batch); ++b)
#endif

/* Rows (or columns) of a block that each pass over the trailing matrix updates together, their
   vector entries held in registers (the compilers unroll the loops over them, of constant
   length): a vector entry is then read once for ROWS matrix entries. The
   matrix is streamed from device memory, and so are the vectors (a warp's vector of n = 100
   entries is 25.6 kB, too much for the caches once thousands of threads are resident). */
#define ROWS 4

#define EPSILON 2.220446049250313e-16 /* 2^-52 */
#define LARGEST_DOUBLE 1.7976931348623157e308

/* a_ij of the current matrix (a already offset to it), its vectors' entry i */
#define A(i, j) a[((long long)(i) * n + (j)) * batch]
#define AT(x, i) (x)[(long long)(i) * batch]

/* Scales the matrix (all of it, or its lower triangle) by 2^-e so that its largest entry lies in
   [1/2, 1); returns e (0 for a zero or non-finite matrix, left as it is). */
DEVICE int scale_to_unit(double *a, int n, long long batch, int lower)
{
    double largest = 0.0;
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < (lower ? i + 1 : n); ++j)
            largest = fmax(largest, fabs(A(i, j)));
    int exponent = 0;
    if (!(largest > 0.0 && largest <= LARGEST_DOUBLE))
        return 0;
    frexp(largest, &exponent);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < (lower ? i + 1 : n); ++j)
            A(i, j) = ldexp(A(i, j), -exponent);
    return exponent;
}

/* The Householder reflector of x_0 = alpha and x_1 .. x_(m-1) whose squares sum to sigma, as
   LAPACK's dlarfg: returns beta, and sets tau and the factor that scales x_i into v_i (v_0 = 1);
   tau = 0 and beta = alpha where sigma = 0 (x is already a multiple of e_1). */
DEVICE double householder(double alpha, double sigma, double *tau, double *inverse)
{
    *tau = 0.0;
    *inverse = 0.0;
    if (sigma == 0.0)
        return alpha;
    const double norm = sqrt(alpha * alpha + sigma);
    const double beta = alpha >= 0.0 ? -norm : norm;
    *tau = (beta - alpha) / beta;
    *inverse = 1.0 / (alpha - beta);
    return beta;
}

/* The Householder reflector of x (m entries, x_i at x[i stride]), as LAPACK's dlarfg: returns
   beta and sets tau and v (v_0 = 1, v_i at v[i batch]) so that (I - tau v v^T) x = beta e_1;
   tau = 0 and beta = x_0 where x is already a multiple of e_1. */
DEVICE double reflector(const double *x, long long stride, int m, double *v, long long batch,
                        double *tau)
{
    double scale = 0.0;
    for (int i = 0; i < m; ++i)
        scale = fmax(scale, fabs(x[i * stride]));
    *tau = 0.0;
    if (scale == 0.0)
        return 0.0;
    const double alpha = x[0] / scale;
    double sigma = 0.0;
    for (int i = 1; i < m; ++i) {
        const double y = x[i * stride] / scale;
        sigma += y * y;
    }
    double inverse;
    const double beta = householder(alpha, sigma, tau, &inverse);
    if (*tau == 0.0)
        return x[0];
    AT(v, 0) = 1.0;
    for (int i = 1; i < m; ++i)
        AT(v, i) = x[i * stride] / scale * inverse;
    return beta * scale;
}

/* Eigenvalues of the symmetric tridiagonal matrix with diagonal d and off-diagonal e (size and
   size - 1 entries, each at [i batch]), left in d unordered; e is destroyed. Returns 1 where the
   iteration did not converge. */
DEVICE int tridiagonal_qr(double *d, double *e, int size, long long batch)
{
    int hi = size - 1, steps = 0;
    while (hi > 0) {
        if (fabs(AT(e, hi - 1)) <= EPSILON * (fabs(AT(d, hi - 1)) + fabs(AT(d, hi)))) {
            AT(e, hi - 1) = 0.0;
            --hi;
            continue;
        }
        int lo = hi - 1;
        while (lo > 0 && !(fabs(AT(e, lo - 1)) <= EPSILON * (fabs(AT(d, lo - 1)) + fabs(AT(d, lo)))))
            --lo;
        if (lo > 0)
            AT(e, lo - 1) = 0.0;
        if (++steps > 30 * size)
            return 1;
        /* Wilkinson's shift: the eigenvalue of the trailing 2 x 2 nearer d_hi */
        const double half_gap = 0.5 * (AT(d, hi - 1) - AT(d, hi));
        const double f = AT(e, hi - 1);
        const double root = hypot(half_gap, f);
        const double mu = AT(d, hi) - f * (f / (half_gap + (half_gap >= 0.0 ? root : -root)));
        /* chase the bulge: the rotation [c s; -s c] on rows and columns k, k + 1 maps (x, z) to
           (r, 0) */
        double x = AT(d, lo) - mu, z = AT(e, lo);
        for (int k = lo; k < hi; ++k) {
            const double r = hypot(x, z);
            const double c = r > 0.0 ? x / r : 1.0;
            const double s = r > 0.0 ? z / r : 0.0;
            if (k > lo)
                AT(e, k - 1) = r;
            const double p = AT(d, k), q = AT(e, k), t = AT(d, k + 1);
            AT(d, k) = c * c * p + 2.0 * c * s * q + s * s * t;
            AT(d, k + 1) = s * s * p - 2.0 * c * s * q + c * c * t;
            AT(e, k) = c * s * (t - p) + q * (c * c - s * s);
            if (k + 1 < hi) {
                const double next = AT(e, k + 1);
                z = s * next;
                AT(e, k + 1) = c * next;
                x = AT(e, k);
            }
        }
    }
    return 0;
}

/* p = A22 v, A22 the trailing block (rows and columns first .. n - 1) of a symmetric matrix of
   which the lower triangle is read, once: entry (i, j), j < i, adds to p_i and to p_j. */
DEVICE void symmetric_product(const double *a, const double *v, double *p, int first, int n,
                              long long batch)
{
    for (int i = first; i < n; ++i)
        AT(p, i) = 0.0;
    int i = first;
    for (; i + ROWS <= n; i += ROWS) {
        double vr[ROWS], sum[ROWS];
        for (int r = 0; r < ROWS; ++r) {
            vr[r] = AT(v, i + r);
            sum[r] = 0.0;
        }
        for (int j = first; j < i; ++j) {
            const double vj = AT(v, j);
            double column = 0.0;
            for (int r = 0; r < ROWS; ++r) {
                const double x = A(i + r, j);
                sum[r] += x * vj;
                column += x * vr[r];
            }
            AT(p, j) += column;
        }
        for (int r = 0; r < ROWS; ++r) {
            for (int c = 0; c < ROWS; ++c) {
                if (c > r)
                    continue;
                const double x = A(i + r, i + c);
                sum[r] += x * vr[c];
                if (c < r)
                    sum[c] += x * vr[r];
            }
        }
        for (int r = 0; r < ROWS; ++r)
            AT(p, i + r) += sum[r];
    }
    for (; i < n; ++i) {
        const double vi = AT(v, i);
        double sum = 0.0;
        for (int j = first; j < i; ++j) {
            const double x = A(i, j);
            sum += x * AT(v, j);
            AT(p, j) += x * vi;
        }
        AT(p, i) += sum + A(i, i) * vi;
    }
}

/* A22 <- A22 - v w^T - w v^T on the lower triangle of the trailing block (first .. n - 1). */
DEVICE void symmetric_rank2_update(double *a, const double *v, const double *w, int first, int n,
                                   long long batch)
{
    int i = first;
    for (; i + ROWS <= n; i += ROWS) {
        double vr[ROWS], wr[ROWS];
        for (int r = 0; r < ROWS; ++r) {
            vr[r] = AT(v, i + r);
            wr[r] = AT(w, i + r);
        }
        for (int j = first; j < i; ++j) {
            const double vj = AT(v, j), wj = AT(w, j);
            for (int r = 0; r < ROWS; ++r)
                A(i + r, j) -= vr[r] * wj + wr[r] * vj;
        }
        for (int r = 0; r < ROWS; ++r) {
            for (int c = 0; c < ROWS; ++c) {
                if (c <= r)
                    A(i + r, i + c) -= vr[r] * wr[c] + wr[r] * vr[c];
            }
        }
    }
    for (; i < n; ++i) {
        const double vi = AT(v, i), wi = AT(w, i);
        for (int j = first; j <= i; ++j)
            A(i, j) -= vi * AT(w, j) + wi * AT(v, j);
    }
}

/* X <- (I - tau v v^T) X with X(i, j) = a[i along + j across], for first <= i < n (the
   reflector's index: v_i) and from <= j < n (the lines it updates), ROWS lines at a time. The
   left reflection A <- H A is along = n batch (rows), across = batch; the right one A <- A H^T,
   the same with A^T, swaps them. */
#define X(i, j) a[(long long)(i) * along + (long long)(j) * across]
DEVICE void reflect(double *a, long long along, long long across, const double *v, double tau,
                    int first, int from, int n, long long batch)
{
    int j = from;
    for (; j + ROWS <= n; j += ROWS) {
        double sum[ROWS];
        for (int r = 0; r < ROWS; ++r)
            sum[r] = 0.0;
        for (int i = first; i < n; ++i) {
            const double vi = AT(v, i);
            for (int r = 0; r < ROWS; ++r)
                sum[r] += vi * X(i, j + r);
        }
        for (int r = 0; r < ROWS; ++r)
            sum[r] *= tau;
        for (int i = first; i < n; ++i) {
            const double vi = AT(v, i);
            for (int r = 0; r < ROWS; ++r)
                X(i, j + r) -= sum[r] * vi;
        }
    }
    for (; j < n; ++j) {
        double sum = 0.0;
        for (int i = first; i < n; ++i)
            sum += AT(v, i) * X(i, j);
        sum *= tau;
        for (int i = first; i < n; ++i)
            X(i, j) -= sum * AT(v, i);
    }
}
#undef X

/* d (size entries) sorted decreasing and scaled by 2^exponent; all NaN where failed. */
DEVICE void finish(double *d, int size, long long batch, int exponent, int failed)
{
    for (int i = 1; i < size; ++i) {
        const double key = AT(d, i);
        int j = i - 1;
        while (j >= 0 && AT(d, j) < key) {
            AT(d, j + 1) = AT(d, j);
            --j;
        }
        AT(d, j + 1) = key;
    }
    for (int i = 0; i < size; ++i)
        AT(d, i) = failed ? nan("") : ldexp(AT(d, i), exponent);
}

EXPORT void batched_symmetric_eigenvalues(double *matrices, double *work, double *values, int n,
                                          long long batch)
{
    FOR_EACH_MATRIX(b, batch) {
        double *a = matrices + b, *v = work + b, *d = values + b; /* d also holds p, then w */
        const int exponent = scale_to_unit(a, n, batch, 1);
        /* d_k stays in A(k, k), e_k goes to A(k + 1, k) */
        for (int k = 0; k + 2 < n; ++k) {
            double tau;
            A(k + 1, k) = reflector(&A(k + 1, k), (long long)n * batch, n - k - 1, &AT(v, k + 1),
                                    batch, &tau);
            if (tau == 0.0)
                continue;
            /* p = tau A22 v, w = p - (tau / 2) (p^T v) v, both in d */
            symmetric_product(a, v, d, k + 1, n, batch);
            double pv = 0.0;
            for (int i = k + 1; i < n; ++i) {
                AT(d, i) *= tau;
                pv += AT(d, i) * AT(v, i);
            }
            const double half = 0.5 * tau * pv;
            for (int i = k + 1; i < n; ++i)
                AT(d, i) -= half * AT(v, i);
            symmetric_rank2_update(a, v, d, k + 1, n, batch);
        }
        for (int i = 0; i < n; ++i) {
            AT(d, i) = A(i, i);
            if (i + 1 < n)
                AT(v, i) = A(i + 1, i);
        }
        finish(d, n, batch, exponent, tridiagonal_qr(d, v, n, batch));
    }
}

EXPORT void batched_singular_values(double *matrices, double *work, double *values, int n,
                                    long long batch)
{
    FOR_EACH_MATRIX(b, batch) {
        double *a = matrices + b, *v = work + b, *d = values + b;
        const int exponent = scale_to_unit(a, n, batch, 0);
        /* d_k goes to A(k, k), f_k to A(k, k + 1) */
        for (int k = 0; k < n; ++k) {
            double tau;
            /* left: column k, rows k .. n - 1; A <- (I - tau v v^T) A on columns k + 1 .. */
            A(k, k) = reflector(&A(k, k), (long long)n * batch, n - k, &AT(v, k), batch, &tau);
            if (tau != 0.0)
                reflect(a, (long long)n * batch, batch, v, tau, k, k + 1, n, batch);
            if (k + 1 >= n)
                break;
            /* right: row k, columns k + 1 .. n - 1; A <- A (I - tau v v^T) on rows k + 1 .. */
            A(k, k + 1) = reflector(&A(k, k + 1), batch, n - k - 1, &AT(v, k + 1), batch, &tau);
            if (tau != 0.0)
                reflect(a, batch, (long long)n * batch, v, tau, k + 1, k + 1, n, batch);
        }
        /* the Golub-Kahan tridiagonal: diagonal 0, off-diagonal d_0, f_0, d_1, ..., d_(n-1) */
        for (int i = 0; i < n; ++i) {
            AT(d, 2 * i) = 0.0;
            AT(d, 2 * i + 1) = 0.0;
            AT(v, 2 * i) = A(i, i);
            if (i + 1 < n)
                AT(v, 2 * i + 1) = A(i, i + 1);
        }
        finish(d, 2 * n, batch, exponent, tridiagonal_qr(d, v, 2 * n, batch));
    }
}

/* ---------------------------------------------------------------------------------------------
   Tile kernels (CUDA only): one thread block per matrix, the whole matrix in shared memory, so
   that the reduction's passes over the trailing block read and write shared memory instead of
   device memory; the block's threads share the columns (or rows) of each pass. They reduce the
   matrix only; batched_tridiagonal_eigenvalues (one thread per matrix) then runs tridiagonal_qr.

   tile_tridiagonalize(matrices, d, e, n, batch)
     matrices  batch x n x n, each matrix's entries consecutive (row by row), symmetric: its lower
               triangle is read. Left as it is.
     d, e      n entries per matrix, batch innermost (entry i at [i batch + b]): the diagonal and
               off-diagonal of the tridiagonal matrix (the same Householder steps as
               batched_symmetric_eigenvalues, the reflectors' sums taken over the block's
               threads), and in e's last entry the exponent the matrix was scaled by.
   tile_bidiagonalize(matrices, d, e, n, batch)
     d, e      2 n entries per matrix: zeros, and the Golub-Kahan off-diagonal (d_0, f_0, d_1,
               ..., d_(n-1)) of the same left and right reflectors as batched_singular_values;
               e's last entry the exponent.
   batched_tridiagonal_eigenvalues(d, e, size, batch)
     one thread per matrix: the eigenvalues of each tridiagonal (d, e) of `size`, decreasing, into
     d, scaled back by e's last entry; NaN throughout where the QR steps do not converge.

   Shared memory: the matrix (n rows of stride n | 1, odd so that a half-warp reading a column of
   a row-wise pass hits 16 different banks), two vectors of n, and one entry per thread for the
   sums; blockDim.x must be a power of two (the sums halve it). */
#ifdef __CUDACC_RTC__
#ifndef TILE_MEMORY
#define TILE_MEMORY(name) extern __shared__ double name[]
#endif
#define THREAD ((int)threadIdx.x)
#define THREADS ((int)blockDim.x)
/* the lines first .. last - 1 that this thread updates in a pass */
#define FOR_MY_LINES(i, first, last) for (int i = (first) + THREAD; i < (last); i += THREADS)
#define T(i, j) tile[(i) * stride + (j)]

/* The sum over the block of each thread's `value` (where `largest`: the largest, NaN-blind as
   scale_to_unit), in a fixed order, the same on every run. */
DEVICE double block_reduce(double value, double *partial, int largest)
{
    partial[THREAD] = value;
    __syncthreads();
    for (int half = THREADS / 2; half > 0; half /= 2) {
        if (THREAD < half) {
            const double other = partial[THREAD + half];
            partial[THREAD] = largest ? fmax(partial[THREAD], other) : partial[THREAD] + other;
        }
        __syncthreads();
    }
    const double result = partial[0];
    __syncthreads(); /* all have read it before partial is written again */
    return result;
}

/* Loads matrix b into the tile (its lower triangle mirrored where `lower`), scaled by 2^-e so
   that its largest entry lies in [1/2, 1) (as scale_to_unit); returns e. */
DEVICE int load_tile(const double *matrix, double *tile, int stride, int n, int lower,
                     double *partial)
{
    double largest = 0.0;
    for (int index = THREAD; index < n * n; index += THREADS) {
        const int i = index / n, j = index % n;
        if (lower && j > i)
            continue;
        const double x = matrix[index];
        largest = fmax(largest, fabs(x));
        T(i, j) = x;
        if (lower)
            T(j, i) = x;
    }
    largest = block_reduce(largest, partial, 1); /* its barriers also complete the tile */
    int exponent = 0;
    if (!(largest > 0.0 && largest <= LARGEST_DOUBLE))
        return 0;
    frexp(largest, &exponent);
    for (int index = THREAD; index < n * n; index += THREADS) {
        const int i = index / n, j = index % n;
        T(i, j) = ldexp(T(i, j), -exponent);
    }
    __syncthreads();
    return exponent;
}

EXPORT void tile_tridiagonalize(const double *matrices, double *d_out, double *e_out, int n,
                                long long batch)
{
    TILE_MEMORY(tile);
    const long long b = blockIdx.x;
    if (b >= batch)
        return; /* the whole block: no barrier is left waiting */
    const int stride = n | 1;
    double *v = tile + (long long)n * stride, *p = v + n, *partial = p + n;
    const int exponent = load_tile(matrices + b * n * n, tile, stride, n, 1, partial);
    /* the reflectors' sums of squares unscaled (reflector scales them): the matrix is scaled to
       [1/2, 1), so that they do not overflow, and squares that underflow are below eps^2 */
    for (int k = 0; k + 2 < n; ++k) {
        /* the reflector of column k below the diagonal */
        double sigma = 0.0;
        FOR_MY_LINES(i, k + 2, n)
            sigma += T(i, k) * T(i, k);
        sigma = block_reduce(sigma, partial, 0);
        double tau, inverse;
        const double alpha = T(k + 1, k);
        const double beta = householder(alpha, sigma, &tau, &inverse);
        if (THREAD == 0)
            e_out[k * batch + b] = beta;
        if (tau == 0.0)
            continue;
        FOR_MY_LINES(i, k + 1, n)
            v[i] = i == k + 1 ? 1.0 : T(i, k) * inverse;
        __syncthreads();
        /* p = tau A22 v, column j by its thread (A22 symmetric, both triangles kept) */
        FOR_MY_LINES(j, k + 1, n) {
            double sum = 0.0;
            for (int i = k + 1; i < n; ++i)
                sum += T(i, j) * v[i];
            p[j] = tau * sum;
        }
        double pv = 0.0;
        FOR_MY_LINES(j, k + 1, n)
            pv += p[j] * v[j];
        pv = block_reduce(pv, partial, 0); /* its barriers also complete p */
        FOR_MY_LINES(j, k + 1, n)
            p[j] -= 0.5 * tau * pv * v[j]; /* w */
        __syncthreads();
        /* A22 <- A22 - v w^T - w v^T, column j by its thread */
        FOR_MY_LINES(j, k + 1, n) {
            const double vj = v[j], wj = p[j];
            for (int i = k + 1; i < n; ++i)
                T(i, j) -= v[i] * wj + p[i] * vj;
        }
        __syncthreads();
    }
    FOR_MY_LINES(i, 0, n) {
        d_out[i * batch + b] = T(i, i);
        if (i + 2 == n) /* the last off-diagonal entry: no reflector */
            e_out[i * batch + b] = T(i + 1, i);
    }
    if (THREAD == 0)
        e_out[(n - 1) * batch + b] = (double)exponent;
}

EXPORT void tile_bidiagonalize(const double *matrices, double *d_out, double *e_out, int n,
                               long long batch)
{
    TILE_MEMORY(tile);
    const long long b = blockIdx.x;
    if (b >= batch)
        return;
    const int stride = n | 1;
    double *v = tile + (long long)n * stride, *partial = v + 2 * n;
    const int exponent = load_tile(matrices + b * n * n, tile, stride, n, 0, partial);
    for (int k = 0; k < n; ++k) { /* sums of squares unscaled, as in tile_tridiagonalize */
        /* left: column k from the diagonal down; A <- (I - tau v v^T) A on columns k + 1 .. */
        double sigma = 0.0;
        FOR_MY_LINES(i, k + 1, n)
            sigma += T(i, k) * T(i, k);
        sigma = block_reduce(sigma, partial, 0);
        double tau, inverse;
        double beta = householder(T(k, k), sigma, &tau, &inverse);
        if (THREAD == 0)
            e_out[2 * k * batch + b] = beta; /* d_k */
        if (tau != 0.0) {
            FOR_MY_LINES(i, k, n)
                v[i] = i == k ? 1.0 : T(i, k) * inverse;
            __syncthreads();
            FOR_MY_LINES(j, k + 1, n) { /* column j by its thread */
                double sum = 0.0;
                for (int i = k; i < n; ++i)
                    sum += v[i] * T(i, j);
                sum *= tau;
                for (int i = k; i < n; ++i)
                    T(i, j) -= sum * v[i];
            }
            __syncthreads();
        }
        if (k + 1 >= n)
            break;
        /* right: row k right of the diagonal; A <- A (I - tau v v^T) on rows k + 1 .. */
        sigma = 0.0;
        FOR_MY_LINES(j, k + 2, n)
            sigma += T(k, j) * T(k, j);
        sigma = block_reduce(sigma, partial, 0);
        beta = householder(T(k, k + 1), sigma, &tau, &inverse);
        if (THREAD == 0)
            e_out[(2 * k + 1) * batch + b] = beta; /* f_k */
        if (tau != 0.0) {
            FOR_MY_LINES(j, k + 1, n)
                v[j] = j == k + 1 ? 1.0 : T(k, j) * inverse;
            __syncthreads();
            FOR_MY_LINES(i, k + 1, n) { /* row i by its thread */
                double sum = 0.0;
                for (int j = k + 1; j < n; ++j)
                    sum += T(i, j) * v[j];
                sum *= tau;
                for (int j = k + 1; j < n; ++j)
                    T(i, j) -= sum * v[j];
            }
            __syncthreads();
        }
    }
    FOR_MY_LINES(i, 0, 2 * n)
        d_out[i * batch + b] = 0.0;
    if (THREAD == 0)
        e_out[(2 * n - 1) * batch + b] = (double)exponent;
}

EXPORT void batched_tridiagonal_eigenvalues(double *d_all, double *e_all, int size,
                                            long long batch)
{
    FOR_EACH_MATRIX(b, batch) {
        double *d = d_all + b, *e = e_all + b;
        const int exponent = (int)AT(e, size - 1);
        finish(d, size, batch, exponent, tridiagonal_qr(d, e, size, batch));
    }
}
#undef T
#endif /* __CUDACC_RTC__: the tile kernels */
