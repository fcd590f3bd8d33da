from typedrunner.app.cli import main

main()
