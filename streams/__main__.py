from onestop.streams.cli import main

main()
