from infobench.cli import main

main()
