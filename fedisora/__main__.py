from fedisora.cli import run

run()
