from cinerec.cli import main

main()
