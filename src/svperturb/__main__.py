from svperturb.cli import run

run()
