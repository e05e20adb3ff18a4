from ccl import main

main()
