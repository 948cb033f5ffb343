from chronsearch.cli import main

main()
