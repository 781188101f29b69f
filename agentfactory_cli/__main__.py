import sys

from agentfactory_cli.cli import main

sys.exit(main())
