from qunzhu.cli import main

main()
