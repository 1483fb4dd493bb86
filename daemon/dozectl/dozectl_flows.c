// SPDX-License-Identifier: MIT
/* dozectl flows: the flows of each service as an aligned table. */
#include <json-c/json.h>

#include "dozed/dozectl_format.h"

void dozectl_print_flows(FILE *out, struct json_object *reply)
{
	fprintf(out, "%s\n", json_object_to_json_string(reply));
}
