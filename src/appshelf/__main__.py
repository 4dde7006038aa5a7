"""`python -m appshelf` runs the same CLI as the `appshelf` script."""

from appshelf.cli import run

if __name__ == "__main__":
    run()
