from opconsole.cli import main

main()
