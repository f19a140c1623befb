#include "mma/coop"
#include "linear/coop_body"
