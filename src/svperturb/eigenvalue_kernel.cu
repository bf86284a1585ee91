/* Eigenvalues of a batch of real symmetric n x n matrices, one thread per matrix
   (svperturb.eigenvalue_kernel). CUDA C compiled by NVRTC through CuPy; the same text is plain C
   (the test suite compiles it with the C compiler and runs it on the CPU).

   Layout "batch innermost": entry k of matrix b lives at [k * batch + b], so that the threads of a
   warp, each on its own matrix, read and write consecutive addresses.
     packed  n (n + 1) / 2 entries per matrix: the lower triangle row by row, a_ij (i >= j) at
             k = i (i + 1) / 2 + j. Overwritten.
     work    n entries per matrix.
     values  n entries per matrix: the eigenvalues, decreasing; all NaN for a matrix on which the
             iteration did not converge (30 n QR steps), as for a NaN or infinite entry.

   1. The matrix is scaled by a power of two (exact) so that its largest entry lies in [1/2, 1).
   2. Householder tridiagonalization (Golub and Van Loan, Matrix Computations, 4th ed., 8.3.1):
      for k = 0 .. n - 3, the reflector H = I - tau v v^T with v_0 = 1 that maps column k below the
      diagonal onto beta e_1 (LAPACK's dlarfg) is applied to the trailing block A22 from both
      sides: p = tau A22 v, w = p - (tau / 2) (p^T v) v, A22 <- A22 - v w^T - w v^T.
   3. Implicit symmetric QR steps with Wilkinson's shift (ibid. 8.3.5) on the unreduced bottom
      block, deflating where |e_i| <= eps (|d_i| + |d_(i+1)|).
   Both are backward stable: the eigenvalues are those of A + E with ||E||_2 = O(n eps ||A||_2),
   the class of LAPACK's dsyev, which svperturb.engine's certificates assume of any eigensolver. */

#ifdef __CUDACC_RTC__
#define EXPORT extern "C" __global__
#define FOR_EACH_MATRIX(b, batch)                                \
    const long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x; \
    if (b < (batch))
#else
#include <math.h>
#define EXPORT
#define FOR_EACH_MATRIX(b, batch) for (long long b = 0; b < (batch); ++b)
#endif

#define EPSILON 2.220446049250313e-16 /* 2^-52 */

/* a_ij, i >= j, of the current matrix */
#define A(i, j) packed[((long long)(i) * ((i) + 1) / 2 + (j)) * batch + b]
/* the Householder vector, then the off-diagonal e */
#define V(i) work[(long long)(i) * batch + b]
/* p and w of step 2, then the diagonal d */
#define D(i) values[(long long)(i) * batch + b]

EXPORT void batched_symmetric_eigenvalues(double *packed, double *work, double *values, int n,
                                          long long batch)
{
    FOR_EACH_MATRIX(b, batch) {
        /* 1. scale */
        double largest = 0.0;
        for (int i = 0; i < n; ++i)
            for (int j = 0; j <= i; ++j)
                largest = fmax(largest, fabs(A(i, j)));
        int exponent = 0;
        if (largest > 0.0 && largest <= 1.7976931348623157e308)
            frexp(largest, &exponent);
        for (int i = 0; i < n; ++i)
            for (int j = 0; j <= i; ++j)
                A(i, j) = ldexp(A(i, j), -exponent);

        /* 2. tridiagonalize: d_k stays in A(k, k), e_k goes to A(k + 1, k) */
        for (int k = 0; k + 2 < n; ++k) {
            double scale = 0.0;
            for (int i = k + 1; i < n; ++i)
                scale = fmax(scale, fabs(A(i, k)));
            if (scale == 0.0)
                continue; /* column already reduced: e_k = 0, H = I */
            const double alpha = A(k + 1, k) / scale;
            double sigma = 0.0;
            for (int i = k + 2; i < n; ++i) {
                const double x = A(i, k) / scale;
                sigma += x * x;
            }
            if (sigma == 0.0)
                continue; /* e_k = a_(k+1,k) already, H = I */
            const double norm = sqrt(alpha * alpha + sigma);
            const double beta = alpha >= 0.0 ? -norm : norm;
            const double tau = (beta - alpha) / beta;
            const double inverse = 1.0 / (alpha - beta);
            V(k + 1) = 1.0;
            for (int i = k + 2; i < n; ++i)
                V(i) = A(i, k) / scale * inverse;
            A(k + 1, k) = beta * scale;
            /* p = tau A22 v, row i of the symmetric A22 read as its row (j <= i) and column */
            double pv = 0.0;
            for (int i = k + 1; i < n; ++i) {
                double sum = 0.0;
                for (int j = k + 1; j <= i; ++j)
                    sum += A(i, j) * V(j);
                for (int j = i + 1; j < n; ++j)
                    sum += A(j, i) * V(j);
                D(i) = tau * sum;
                pv += D(i) * V(i);
            }
            const double half = 0.5 * tau * pv;
            for (int i = k + 1; i < n; ++i)
                D(i) -= half * V(i); /* w */
            for (int i = k + 1; i < n; ++i) {
                const double vi = V(i), wi = D(i);
                for (int j = k + 1; j <= i; ++j)
                    A(i, j) -= vi * D(j) + wi * V(j);
            }
        }
        for (int i = 0; i < n; ++i) {
            D(i) = A(i, i);
            if (i + 1 < n)
                V(i) = A(i + 1, i);
        }

        /* 3. implicit QR steps on d = D, e = V */
        int hi = n - 1, steps = 0, failed = 0;
        while (hi > 0) {
            if (fabs(V(hi - 1)) <= EPSILON * (fabs(D(hi - 1)) + fabs(D(hi)))) {
                V(hi - 1) = 0.0;
                --hi;
                continue;
            }
            int lo = hi - 1;
            while (lo > 0 && !(fabs(V(lo - 1)) <= EPSILON * (fabs(D(lo - 1)) + fabs(D(lo)))))
                --lo;
            if (lo > 0)
                V(lo - 1) = 0.0;
            if (++steps > 30 * n) {
                failed = 1;
                break;
            }
            /* Wilkinson's shift: the eigenvalue of the trailing 2 x 2 nearer d_hi */
            const double half_gap = 0.5 * (D(hi - 1) - D(hi));
            const double f = V(hi - 1);
            const double root = hypot(half_gap, f);
            const double mu = D(hi) - f * (f / (half_gap + (half_gap >= 0.0 ? root : -root)));
            /* chase the bulge: rotation [c s; -s c] on rows and columns k, k + 1 maps (x, z) to
               (r, 0) */
            double x = D(lo) - mu, z = V(lo);
            for (int k = lo; k < hi; ++k) {
                const double r = hypot(x, z);
                const double c = r > 0.0 ? x / r : 1.0;
                const double s = r > 0.0 ? z / r : 0.0;
                if (k > lo)
                    V(k - 1) = r;
                const double a = D(k), e = V(k), d = D(k + 1);
                D(k) = c * c * a + 2.0 * c * s * e + s * s * d;
                D(k + 1) = s * s * a - 2.0 * c * s * e + c * c * d;
                V(k) = c * s * (d - a) + e * (c * c - s * s);
                if (k + 1 < hi) {
                    const double next = V(k + 1);
                    z = s * next;
                    V(k + 1) = c * next;
                    x = V(k);
                }
            }
        }

        /* decreasing order (insertion sort), scale back; NaN for a failure */
        for (int i = 1; i < n; ++i) {
            const double key = D(i);
            int j = i - 1;
            while (j >= 0 && D(j) < key) {
                D(j + 1) = D(j);
                --j;
            }
            D(j + 1) = key;
        }
        for (int i = 0; i < n; ++i)
            D(i) = failed ? nan("") : ldexp(D(i), exponent);
    }
}
