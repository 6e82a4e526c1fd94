"""``python -m scribbleseg`` runs the command-line interface."""

from scribbleseg.cli.app import main

if __name__ == "__main__":
    main()
