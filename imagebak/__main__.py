from imagebak.cli import main

main()
