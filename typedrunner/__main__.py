from typedrunner.cli import main

main()
