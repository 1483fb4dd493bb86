// SPDX-License-Identifier: MIT
/* dozectl: the command-line client of dozed's control socket (being built). */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "dozectl: not built yet\n");
	return 2;
}
