"""`python -m pipeline.cli`: what `stackwire up`, docker-compose and the tests start."""

from pipeline.cli import main

main()
