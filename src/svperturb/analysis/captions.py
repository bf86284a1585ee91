"""The report's figures: the claim(s) each illustrates, its title and what to look for on it.

Plain data, cheap to import: the HTML report (analysis.report) prints these captions under the
figures, and the workflow's report rule (workflow/rules/report.smk) gives them to Snakemake's own
report. Every figure of analysis.figures has one, under its file stem.
"""

from __future__ import annotations

from typing import NamedTuple


class Caption(NamedTuple):
    # the claim the figure illustrates, or the claims (a tuple): the report embeds it in the first
    # one's row and opens it from the others'; None: the depth study, which makes no numbered claim
    claim: int | tuple[int, ...] | None
    title: str
    look_for: str

    @property
    def claims(self) -> tuple[int, ...]:
        """The claims whose rows show the figure; empty for the depth study."""
        if self.claim is None:
            return ()
        return (self.claim,) if isinstance(self.claim, int) else tuple(self.claim)


CAPTIONS: dict[str, Caption] = {
    "figure4_tracy_widom_symmetric": Caption(
        2, "Figure 4: Z_n and Z~_n against TW1",
        "One histogram per n (yellow the largest): they should close in on the dashed TW1 density as "
        "n grows; uniform entries (bottom row) get there more slowly than Gaussian ones."),
    "figure5a_largest_singular_value": Caption(
        3, "Figure 5a: Y_n against TW1",
        "Left, Gaussian K_n (the case Theorem 35 covers and the verdict judges): the histograms settle "
        "on the dashed TW1 density as n grows. Right, uniform K_n, reported only: a slower approach."),
    "figure5b_ratio": Caption(
        4, "Figure 5b: tau_bar / (sqrt(2) s_1)",
        "Left: the ratio concentrates around 1 as n grows, inside the dotted [0.6, 1.4] from n = 10 "
        "on. Right: the medians (95% intervals) and their fits 1 - a n^-b level off at the dashed 1."),
    "figure6_bound_efficiency": Caption(
        5, "Figure 6: efficiency of the bounds (115), (116) at r = 2",
        "Every histogram must lie right of the dashed 1 (the bounds hold); (c) narrows as n grows "
        "and should settle near the paper's 1.1 (dotted red)."),
    "figure7_condition_bounds": Caption(
        6, "Figure 7: kappa(W1 + I) and the limits (121), (122)",
        "Top: kappa(W1 + I) (outlines, one per n) stays left of the limit (121) (dashed red), and the "
        "bounds (116), (114) at the largest n (shaded) pile up at (121) and (122). Bottom: the medians "
        "and their fits c + a n^-2/3 run into the paper's limits (dashed lines) as n grows."),
    "edelman_law": Caption(
        9, "Edelman's law for the ConvNet",
        "kappa(D1 W1 D)/n at eta = -1, one histogram per n: from moderate n on they fall onto the "
        "dashed Edelman density (154)."),
    "convnet_vs_resnet": Caption(
        9, "ConvNet vs ResNet at the largest n",
        "One panel per activation slope eta: the ResNet's kappa (blue) must lie left of the "
        "ConvNet's (red), here by decades at every eta: the skip connection conditions the layer."),
    "claim10_hard_bound_slack": Caption(
        10, "Claim 10: relative slack of every hard bound against c n",
        "One panel per bound; filled markers are the smallest slack over a grid point's samples, "
        "hollow ones the median. A violation would fall below the black 0 line; markers on it are "
        "bounds attained up to rounding."),
    "claim10_condition_vs_bounds": Caption(
        10, "Claim 10: kappa(M(1) D) against c n, with the bounds",
        "Per eta, every marker (largest kappa of a grid point) and dot (a sample) must stay below the "
        "curves of the bounds that apply there: (87) in grey (for eta = -1 it is (88)), (89)-(91) "
        "for ReLU and (100)-(101) for 0 <= eta < 1 in purple."),
    "claim11_relu_random_weights": Caption(
        11, "Claim 11: failure rates of (128), (129), (151), and how loose they are",
        "Left: each marker is the upper confidence bound of P[the bound fails] in one cell; a cell is "
        "reproduced when its marker lies below the grey bar of its theta (the allowed "
        "2 exp(-theta^2/2)). Right: median kappa against the bound, below the dashed kappa = bound."),
    "claim12_relu_shrinkage": Caption(
        12, "Claim 12: ReLU shrinks singular values (Lemma 24); leaky ReLU conditioning",
        "Left: min over i of s_i(M) - s_i(MD or DM), in units of the rounding allowance; a violation "
        "would lie left of the dashed -1, and for eta = 0 none may. Right: the median "
        "kappa((D1 W1 + I) D) follows 1/eta (dotted) for leaky ReLU, whatever the activity."),
    "depth_condition_numbers": Caption(
        None, "Depth: median kappa against p for ConvNet, single skip and per-layer skip",
        "The ConvNet's median kappa (red) grows by orders of magnitude with the depth p, while a "
        "single skip over the p layers (blue) or a skip at every layer (green) stays flat."),
    "claim13_derivative": Caption(
        13, "Claim 13: analytic derivatives (66), (65) against finite differences",
        "(a) The errors (outlines) must lie left of the grey tolerance histogram: no (sample, rho, i) "
        "beyond its error budget. (b) The red tangents, slope u_i^T v_i, touch each singular-value "
        "path."),
    "claim14_data_factor": Caption(
        14, "Claim 14: the data factor on explicit matrices",
        "(a) The singular values of Q lie on the identity line (51). (b) Every ratio stays at or "
        "below 1: (57), (58) hold. (c) For the identity (50) the points must lie on the dashed line; "
        "scatter off it for n > 1 is its failure. (d) Blue markers (Q as defined) stay below the "
        "dashed bound (63); red ones (the loss's true form) need not."),
    "figure2_rho_paths": Caption(
        15, "Figure 2: singular values of Mo + rho I over rho",
        "(a) s_1 (blue) falls to a kink at rho = 0.25 (red triangle), then rises: neither monotone "
        "nor differentiable; the LAPACK curves lie on the dashed closed form. (b) One Gaussian "
        "15 x 15 path: red circles are isolated interior extrema, black crosses extrema at a zero or "
        "near a crossing. (c) The share of realisations right of the dotted line has >= 2 of them."),
    "figure8_toy_network": Caption(
        16, "Figure 8: the toy network's Q over rho",
        "(c) is the claim: the paper has kappa(Q) fall steadily with rho. The median (black) falls, "
        "but single realisations spike (poles: kappa infinite) and rise again. (a), (b): s_1 and s_* "
        "of Q; (d): the spectrum s_1/s_i at four rho."),
    "sharpness_closed_forms": Caption(
        (17, 18), "Claims 17, 18: the closed forms of lambda_max against the exact value",
        "Each dot is a sample's |value - exact| / exact on a log axis (0 in the shaded strip). (a) "
        "Depth 2, 2 (||W_1||^2 + ||W_2||^2), and (b) width 1, 2 sum_i prod_(j != i) w_j^2, must stay "
        "at or below the dark bars, the rounding allowance of the verdicts, near machine epsilon "
        "(dotted); so must (c) the balanced value 2 L ||M||^(2-2/L) at kappa = 0. (d) The "
        "Cauchy-Schwarz sum 2 sum_i ||A_i||^2 ||B_i||^2 sits at rounding at depth 2 (and at width 1 "
        "or kappa = 0), and far above it at L >= 3 once kappa > 0."),
    "sharpness_imbalance": Caption(
        (19, 20, 21, 22), "Claims 19-22: lambda_max over the imbalance kappa, and after rescaling",
        "Per target, (a)-(c) at the largest width with the least over rescalings: (a) lambda_max / "
        "2 L ||M||^(2-2/L) starts at 1 (kappa = 0, balanced) and rises with kappa and depth, never "
        "below 1. (b) The least over layer rescalings (solid) and the value at equal ||A_i|| ||B_i|| "
        "(dashed) lie lower but above 1. (c) Equal products give the least where the curve stays in "
        "the grey band around 0: at depth 2 it does; at L >= 3 it rises well above. (d) Depth 2, at "
        "the least: the products' spread (solid) stays below the red 'equal' line, the Frobenius "
        "norms' (dashed) lies above it for kappa > 0."),
    "sharpness_cauchy_schwarz": Caption(
        23, "Claim 23: the Cauchy-Schwarz sum over the exact lambda_max",
        "One panel per target and width, one curve per depth (median, quartiles shaded): the "
        "ratio 2 sum_i ||A_i||^2 ||B_i||^2 / lambda_max is 1 (dashed) at depth 2, at width 1 and at "
        "kappa = 0, and rises above 1 for L >= 3 once kappa > 0, more with depth and width: how "
        "much the exact expression adds to the bound."),
    "escape_transition": Caption(
        24, "Claim 24: the escape transition of gradient descent at c = 1",
        "(a) Per depth, the fraction of runs that left the minimizer (escaped, or moved to another "
        "minimizer) per bin of the step factor c, with 95% Wilson intervals: 0 left of the dashed "
        "c = 1, 1 right of it, the jump inside one bin. (b) Every run near c = 1: blue circles "
        "(stayed) must lie left of the red triangles (escaped), 1 between them, and the hollow "
        "crosses (undecided) inside the grey predicted window. (c) The measured growth per step "
        "(l_end / l_0)^(1/(2 steps)) on the line y = |1 - 2c|; moved runs, which left the linear "
        "regime, may lie off it."),
    "smooth_hessian_width": Caption(
        31, "Claim 31: the predictor's Hessian norm against the width",
        "One panel per activation at the smallest sigma_0, one colour per depth: median ||H|| = "
        "max |lambda| with quartiles, log-log, and the OLS line of log ||H|| against log m with its "
        "slope in the legend. The claim holds where the lines run parallel to the dashed slope "
        "-1/2 (the verdict allows [-3/4, -1/4])."),
    "smooth_hessian_depth": Caption(
        32, "Claim 32: sqrt(m) ||H|| against depth",
        "One panel per activation at the largest width, one curve per sigma_0, log scale: an "
        "exponential in L is a rising straight line, a power of L bends down. At sigma_0 <= 1/2 the "
        "curves must not rise as straight lines; at sigma_0 > 1 they are expected to."),
    "smooth_hessian_descent": Caption(
        33, "Claim 33: the RSC quantity and the loss along gradient descent",
        "Top: the median ratio q_t / q_0 of the squared norm of the average predictor gradient to "
        "its start, per depth, at the smallest sigma_0 and the largest width; it must stay above the "
        "dashed 1/2. Bottom: the median loss ratio L_t / L_0, which must fall as a straight line on "
        "the log scale (geometrically); a flat tail is a stalled or stopped (diverged) run."),
    "deep_linear_staircase": Caption(
        (28, 29), "Claims 28, 29: the staircase of small initialization against lazy training",
        "Left, small initialization: the map's singular values (solid) rise one at a time, the "
        "largest first, each to its teacher value (dotted), and the loss (c) rests on the red "
        "plateau levels 1/2 sum_(i>k) m_i^2 between the jumps. Right, large initialization: all "
        "singular values move at once and the loss (d) falls without resting on any level."),
    "deep_linear_branches": Caption(
        (26, 27), "Claims 26, 27: learned singular values on the predicted branches",
        "Per depth, each converged run's u_k^T A v_k against the teacher's m_k, both over m_c: "
        "circles must lie on the solid stable root, crosses on 0. At L = 2 the points follow "
        "max(m - lambda, 0) whatever the initialization; at L >= 3 the stable branch starts at "
        "m_e (grey), and between m_e and m_c (red) both circles (local minima) and crosses (the "
        "global one) appear, from different initializations; none may sit on the dashed unstable "
        "root."),
    "deep_linear_crossover": Caption(
        (29, 30), "Claims 29, 30: the rank bias against the initialization exponent",
        "The median of S = q_1 - q_d (the largest teacher direction's progress minus the "
        "smallest's, when half the way is done) with its 95% interval, one curve per width: near 0 "
        "for gamma < 1 (no preference, lazy), near 1 for gamma > 1 (largest first). The curves "
        "must cross the dashed 1/2 between the grid's gammas on either side of the red gamma = 1; "
        "as the width grows the crossing is expected to close in on 1."),
}
