# svperturb workflow: simulate -> aggregate -> fit -> report.
# Rules only call the `svperturb` CLI; the mathematics lives in src/svperturb/.
# Run: `make run` (default config) or
#      snakemake --configfile config/paper.yaml   (a config given here replaces the default wholly)
# After a run, `snakemake --report report.zip` (same config) gives Snakemake's own report: the claims
# table, the figures with their captions and index.html, with provenance and run times.
from snakemake.utils import min_version

min_version("9.0")

if not workflow.config_settings.configfiles:
    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),
