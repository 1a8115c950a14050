from edgesep.cli.main import run

run()
