/* rt_path.h: confining a path named by a model (external data files, a validation set)
 * to the model's directory, symbolic links included. */
#ifndef RT_PATH_H
#define RT_PATH_H

#include <stdbool.h>

#include "rt_status.h"

/* True when loc is relative, not empty and has no ".." component. */
bool rt_path_is_confined(const char *loc);

/* The real path of base_dir/loc (new string, caller frees) when loc is confined and,
 * after every link is followed, names an existing file or folder inside base_dir.
 * NULL and err otherwise; `what` names the path in the message ("external data file"). */
char *rt_path_resolve_inside(const char *base_dir, const char *loc, const char *what,
                             rt_error *err);

#endif
