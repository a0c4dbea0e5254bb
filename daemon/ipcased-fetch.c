/* ipcased-fetch — one account's fetcher, started by ipcased (spawn.h): IMAP and MIME, nothing else. */
#include "fetcher.h"
#include "spawn.h"

int
main(int argc, char *argv[])
{
	fetcher_run(helper_init(argc, argv));
}
