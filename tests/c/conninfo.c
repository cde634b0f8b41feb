/*
 * libpq's own reading of connection strings, for tests/conninfo_libpq.rs.
 *
 *   conninfo parse STRING...   for each STRING: "BEGIN", then PQconninfoParse's non-NULL
 *                              options as key=value lines (or one "ERROR message" line),
 *                              then "END"
 *   conninfo defaults          PQconndefaults() under the current environment: non-NULL
 *                              options as key=value lines
 *   conninfo keywords          every keyword this libpq knows, one a line
 *
 * Values are escaped so that each fits on one line: backslash as "\\", newline as "\n",
 * carriage return as "\r".
 */
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

static void put_escaped(const char *s)
{
	for (; *s; s++)
	{
		if (*s == '\\')
			fputs("\\\\", stdout);
		else if (*s == '\n')
			fputs("\\n", stdout);
		else if (*s == '\r')
			fputs("\\r", stdout);
		else
			putchar(*s);
	}
}

static void print_options(const PQconninfoOption *opts)
{
	for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
	{
		if (o->val == NULL)
			continue;
		printf("%s=", o->keyword);
		put_escaped(o->val);
		putchar('\n');
	}
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "parse") == 0)
	{
		for (int i = 2; i < argc; i++)
		{
			char	   *err = NULL;
			PQconninfoOption *opts = PQconninfoParse(argv[i], &err);

			puts("BEGIN");
			if (opts == NULL)
			{
				fputs("ERROR ", stdout);
				put_escaped(err ? err : "out of memory");
				putchar('\n');
			}
			else
				print_options(opts);
			puts("END");
			if (err)
				PQfreemem(err);
			PQconninfoFree(opts);
		}
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "defaults") == 0)
	{
		PQconninfoOption *opts = PQconndefaults();

		if (opts == NULL)
		{
			fputs("PQconndefaults failed\n", stderr);
			return 1;
		}
		print_options(opts);
		PQconninfoFree(opts);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "keywords") == 0)
	{
		PQconninfoOption *opts = PQconndefaults();

		if (opts == NULL)
		{
			fputs("PQconndefaults failed\n", stderr);
			return 1;
		}
		for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
			puts(o->keyword);
		PQconninfoFree(opts);
		return 0;
	}
	fprintf(stderr, "usage: %s parse STRING... | defaults | keywords\n", argv[0]);
	return 2;
}
