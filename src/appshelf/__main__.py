"""`python -m appshelf` runs the same CLI as the `appshelf` script."""

from appshelf.cli import main

if __name__ == "__main__":
    main()
