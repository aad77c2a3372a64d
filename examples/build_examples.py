"""Write the bundled example datasets from the hand-written fragments below.

    python examples/build_examples.py

- `relevance/`: Article, Comment, label (relevant / irrelevant): is the comment about the article?
  Irrelevant comments are spam, small talk, or comments written for a *different* article, so a
  model has to read both texts, not just the comment.
- `tickets/`: text, label (bug / feature_request / general_inquiry): support tickets about the same
  product features, so the label depends on the intent, not on the feature named.

The output is deterministic (seed 42) and is committed; each set is split 80/20, stratified.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

HERE = Path(__file__).parent
SEED = 42

# --------------------------------------------------------------------------- relevance

# Each article: text, the subject as a comment would name it, aspects readers talk about, and an
# event that people ask about.
ARTICLES = [
    ("City council approves 40 km of protected bike lanes. The network will connect the university, the "
     "central station and three residential districts by 2027, at a cost of 18 million euros. Shop owners "
     "on Market Street fear losing parking spaces.",
     "the bike lane plan", ["the parking spaces on Market Street", "the 18 million euro price tag", "safety for cyclists"],
     "be finished"),
    ("Heatwave pushes regional power demand to a record. Grid operators asked households to avoid running "
     "washing machines between 5 and 8 pm, and two gas plants were restarted to keep up with air "
     "conditioning demand.",
     "the power grid during the heatwave", ["the request to avoid washing machines", "restarting the gas plants", "air conditioning use"],
     "get back to normal"),
    ("Local bakery wins national sourdough award. Maria Ortega, who opened the shop in 2015, credits a "
     "starter she has kept alive for twenty years and flour milled two villages away.",
     "Maria's bakery", ["her twenty-year-old starter", "the locally milled flour", "the sourdough award"],
     "open a second shop"),
    ("School district moves to a four-day week to cope with teacher shortages. Fridays will be used for "
     "tutoring and sports clubs; parents worry about childcare costs.",
     "the four-day school week", ["the teacher shortage", "childcare on Fridays", "the tutoring programme"],
     "start"),
    ("New study links ultra-processed food to poorer sleep. Researchers followed 12,000 adults for six "
     "years and found those eating the most packaged snacks slept 25 minutes less on average.",
     "the sleep study", ["the 12,000 participants", "packaged snacks", "the 25 minutes of lost sleep"],
     "be published in full"),
    ("Tech company lays off 900 employees after missing sales targets. The chief executive said the cuts "
     "would let the firm focus on its cloud business; severance includes four months of pay.",
     "the layoffs", ["the four months of severance", "the cloud business", "the missed sales targets"],
     "be announced to staff"),
    ("River cleanup volunteers pull two tonnes of plastic from the Elm. More than 300 people joined the "
     "weekend effort, which also recovered three shopping trolleys and a motorbike.",
     "the river cleanup", ["the two tonnes of plastic", "the shopping trolleys", "the 300 volunteers"],
     "happen again"),
    ("Home team clinches the league title with a last-minute penalty. Striker Jonas Weber scored in the "
     "94th minute after a video review, ending a 31-year wait for the championship.",
     "the title win", ["Weber's penalty", "the video review", "the 31-year wait"],
     "hold the victory parade"),
    ("Regional airport cancels night flights after noise complaints. Airlines must land before 11 pm from "
     "March; freight operators say the rule will cost hundreds of jobs.",
     "the night flight ban", ["the noise complaints", "the freight jobs", "the 11 pm curfew"],
     "take effect"),
    ("Housing prices fall for the third month in a row as mortgage rates climb. First-time buyers are "
     "waiting, and estate agents report that asking prices are being cut by up to 8 percent.",
     "the fall in housing prices", ["mortgage rates", "first-time buyers", "the 8 percent price cuts"],
     "bottom out"),
    ("Museum returns looted bronze statues to Nigeria. The twelve Benin Bronzes were taken in 1897 and will "
     "be displayed in a new museum in Benin City.",
     "returning the Benin Bronzes", ["the new museum in Benin City", "the events of 1897", "the twelve statues"],
     "arrive in Nigeria"),
    ("Hospital waiting times reach a five-year high. Patients now wait an average of 19 weeks for routine "
     "surgery; the health ministry promised 2,000 extra nurses.",
     "the hospital waiting times", ["the 19-week wait for surgery", "the 2,000 extra nurses", "the health ministry's promise"],
     "improve"),
    ("Farmers warn of a poor apple harvest after a late frost. Growers in the valley lost up to half their "
     "blossoms in April, and cider makers expect higher prices.",
     "the apple harvest", ["the late frost in April", "cider prices", "the lost blossoms"],
     "recover"),
    ("Electric bus fleet enters service on four city routes. The 60 buses are charged overnight at a new "
     "depot and replace diesel vehicles that were more than fifteen years old.",
     "the electric buses", ["overnight charging at the depot", "the old diesel buses", "the four routes"],
     "reach the suburbs"),
    ("Library extends opening hours and drops late fees. The main branch will now open until 10 pm on "
     "weekdays, and all outstanding fines have been cancelled.",
     "the library changes", ["the later opening hours", "cancelling late fees", "the main branch"],
     "apply to the other branches"),
    ("Wildfire forces evacuation of two mountain villages. About 1,500 residents were moved to sports halls "
     "as firefighters battled strong winds; no injuries have been reported.",
     "the wildfire evacuation", ["the strong winds", "the residents in the sports halls", "the firefighters"],
     "let people return home"),
    ("Streaming service raises prices and cracks down on password sharing. Subscribers will pay 2 euros "
     "more a month from June, and accounts used in several households will be charged extra.",
     "the streaming price rise", ["the password sharing rules", "the extra 2 euros a month", "households sharing accounts"],
     "take effect"),
    ("Astronomers spot a comet that will be visible to the naked eye in October. The comet will be brightest "
     "just after sunset, low on the western horizon.",
     "the comet", ["the western horizon after sunset", "seeing it with the naked eye", "its brightness"],
     "be visible"),
    ("Minimum wage to rise by 6 percent next year. Unions welcomed the increase, while small business "
     "groups say restaurants and shops will have to raise prices.",
     "the minimum wage increase", ["the 6 percent rise", "the unions' reaction", "small restaurants and shops"],
     "come in"),
    ("Ancient Roman road uncovered during motorway works. Archaeologists have two months to record the "
     "paved section before construction resumes.",
     "the Roman road", ["the archaeologists' two-month deadline", "the motorway works", "the paved section"],
     "be put on display"),
]

# Comments as people write them, one list per article (same order as ARTICLES). They rarely repeat
# the article's wording, so a model has to match meaning, not phrases.
NATURAL_COMMENTS = [
    ["Finally, safer streets for cycling to work.", "Great, now there will be nowhere to park near the shops.",
     "My kids could ride to school if this really happens.", "Eighteen million for paint and plastic posts? Seriously?"],
    ["We ran the dishwasher at midnight to help out.", "Maybe build more solar panels instead of firing up old gas plants.",
     "Our air conditioner has been running nonstop for a week.", "Blackouts next summer if nothing changes, mark my words."],
    ["Best bread in town, the queue on Saturdays proves it.", "A twenty-year-old starter is older than my car!",
     "Congratulations Maria, well deserved.", "I buy her rye every week, so happy for her."],
    ["Who is supposed to look after my six-year-old on Fridays?", "Pay teachers properly and you won't need this.",
     "Extra tutoring sounds good for kids who are behind.", "My sister teaches there and says morale is very low."],
    ["I stopped eating crisps at night and I sleep much better.", "Correlation is not causation, people who snack may just be stressed.",
     "Six years is a long study, that makes it more convincing.", "No wonder I wake up tired every morning."],
    ["Nine hundred families just lost their income before the holidays.", "Executives keep their bonuses while staff get cut, as usual.",
     "Four months of pay is actually decent compared to other firms.", "Their cloud product is the only thing they do well anyway."],
    ["Thank you to everyone who spent their weekend in the mud.", "How does a motorbike even end up in a river?",
     "I joined last year and we found a bathtub, so this is nothing.", "Plastic bans would stop this at the source."],
    ["Thirty-one years of waiting and it ends in the 94th minute, unbelievable.", "That penalty was soft, the video referee got it wrong.",
     "I cried when the ball went in, what a night.", "Weber deserves a statue outside the stadium."],
    ["I can finally sleep with the windows open.", "Those cargo jobs feed a lot of families in this town.",
     "Planes at 3 am were unbearable, good decision.", "They will just move the freight flights to another airport."],
    ["Still can't afford anything even with prices dropping.", "Good time to negotiate if you have savings.",
     "With rates this high, who can get a loan anyway?", "Our flat has been on the market for five months now."],
    ["About time they went home.", "Every museum in Europe should look at what it holds.",
     "Taken by force should mean given back, simple as that.", "I saw them in the gallery once, they are stunning."],
    ["My mother has waited eight months for a hip operation.", "Promising nurses is easy, training them takes years.",
     "The staff are doing their best with what they have.", "I went private in the end, which not everyone can afford."],
    ["The frost killed half the blossoms on our two trees as well.", "Expect cider to cost a fortune this year.",
     "Growers need insurance for weather like this.", "We will be buying imported apples again."],
    ["They are so quiet, I didn't hear it pull up at the stop.", "Charging them overnight makes sense when the grid is quiet.",
     "Those old diesel buses were filthy, good riddance.", "When does route 12 get them?"],
    ["Open until ten means I can go after work, love it.", "Cancelling fines will bring a lot of people back.",
     "I owed three euros for a cookbook since 2019, thanks!", "Libraries are one of the best things a city pays for."],
    ["Stay safe everyone up in the hills.", "The wind has been crazy all week, no surprise it spread.",
     "Our gym is full of families sleeping on mats tonight.", "Thank you firefighters, heroes every one of them."],
    ["Cancelling my subscription, there are too many services anyway.", "My parents use our login, now we have to pay twice?",
     "Two euros more for the same old shows.", "They share passwords to grow and then punish people for it."],
    ["I'll take my telescope up the hill in October.", "Does it need a dark sky or can I see it from the city?",
     "Last comet I saw was as a child, can't wait.", "West after sunset, noted, thanks!"],
    ["Six percent won't cover the rent increase I just got.", "Our café will have to raise prices or cut hours.",
     "Workers deserve it, everything costs more now.", "Finally some good news for cleaners and cashiers."],
    ["Two months is nowhere near enough time to study it properly.", "Imagine walking the same road as Roman soldiers.",
     "Just reroute the motorway, history matters more.", "Will they move the stones to a museum?"],
]

RELEVANT_TEMPLATES = [
    "I think {subject} is long overdue.",
    "Honestly, {subject} worries me, mostly because of {aspect}.",
    "Great reporting on {subject}, especially the part about {aspect}.",
    "Does anyone know when {subject} will {event}?",
    "{Aspect}: that is the real story here, not the headline.",
    "Nobody mentions {aspect}, which is what matters most about {subject}.",
    "My family is directly affected by {subject}; {aspect} has been a big topic at home.",
    "I read about {aspect} last week too. Glad to see a follow-up on {subject}.",
    "Not convinced by {subject}. What about {aspect}?",
    "Finally some good news: {subject} sounds promising.",
    "The article should have said more about {aspect}.",
    "Can someone explain how {aspect} fits into {subject}?",
]
OFF_TOPIC_COMMENTS = [
    "First!",
    "Check out my channel for free gift cards, link in bio.",
    "Does anyone know a good pizza place downtown?",
    "What a beautiful day, heading to the beach later.",
    "Buy cheap designer sunglasses, 80% off today only!!!",
    "Why does this site keep asking me to accept cookies?",
    "Happy birthday to my brother Tom, love you man.",
    "Earn 500 dollars a day working from home, message me.",
    "Lost my cat near the park yesterday, grey with a white paw. Please call if you see her.",
    "Who else is watching the cooking show tonight?",
    "This website loads so slowly on my phone.",
    "My favourite band is touring again, can't wait!",
    "Anyone selling a second-hand piano? Looking for one for my daughter.",
    "Subscribe for daily crypto tips, guaranteed profits.",
    "Is it just me or is the font on this page tiny?",
    "Good morning everyone, have a great week.",
]


def _fill(template: str, subject: str, aspect: str, event: str) -> str:
    text = template.format(subject=subject, aspect=aspect, event=event, Aspect=aspect[0].upper() + aspect[1:])
    return text[0].upper() + text[1:]


def build_relevance(rng: random.Random) -> list[dict]:
    rows = []
    assert len(NATURAL_COMMENTS) == len(ARTICLES)
    for index, (article, subject, aspects, event) in enumerate(ARTICLES):
        relevant = list(NATURAL_COMMENTS[index])
        relevant += [_fill(t, subject, rng.choice(aspects), event) for t in rng.sample(RELEVANT_TEMPLATES, 5)]
        rows += [{"Article": article, "Comment": comment, "label": "relevant"} for comment in relevant]
        others = [i for i in range(len(ARTICLES)) if i != index]
        # Comments that are on topic for another article: the pair decides, not the comment alone.
        irrelevant = [rng.choice(NATURAL_COMMENTS[i]) for i in rng.sample(others, 4)]
        for i in rng.sample(others, 2):
            _, other_subject, other_aspects, other_event = ARTICLES[i]
            irrelevant.append(_fill(rng.choice(RELEVANT_TEMPLATES), other_subject, rng.choice(other_aspects), other_event))
        irrelevant += rng.sample(OFF_TOPIC_COMMENTS, 3)
        rows += [{"Article": article, "Comment": comment, "label": "irrelevant"} for comment in irrelevant]
    return rows


# --------------------------------------------------------------------------- tickets

FEATURES = [
    "PDF export", "the dashboard", "the login page", "the mobile app", "search", "dark mode", "email notifications",
    "calendar sync", "CSV import", "the invoice page", "password reset", "two-factor authentication", "file upload",
    "checkout", "the settings page", "team invitations", "the public API", "monthly reports", "the Slack integration",
    "recurring payments",
]
ACTIONS = [
    "save a draft", "upload a file larger than 10 MB", "switch to another workspace", "open an old project",
    "change my profile picture", "log in from Firefox", "filter by date", "add a second user", "sort the table",
    "print an invoice", "rename a folder", "paste text from Word",
]
SYMPTOMS = [
    "shows a blank white page", "freezes and I have to restart", "times out after a minute", "shows the wrong totals",
    "logs me out", "duplicates every entry", "does not save my changes", "returns a 500 error",
    "spins forever", "crashes immediately", "sends the same email three times", "shows yesterday's data",
]
ERRORS = ["Something went wrong", "Error 502 Bad Gateway", "undefined is not a function", "Session expired", "Permission denied"]
PLATFORMS = ["Android", "iOS 18", "Safari", "Windows 11", "Chrome on macOS", "the desktop app"]
CAPABILITIES = [
    "export to Excel as well as PDF", "schedule reports every Monday", "show totals per customer",
    "let me choose a custom colour theme", "send a weekly summary email", "work offline",
    "support single sign-on with Google", "remember my filters", "bulk-edit several rows at once",
    "show a history of changes", "let guests comment without an account", "set different permissions per folder",
]
NEW_FEATURES = ["a dark theme", "keyboard shortcuts", "a Gantt chart view", "German translation", "webhooks", "a public roadmap",
                "Outlook integration", "an audit log", "custom fields", "an undo button"]
REASONS = ["our audit", "a client project", "accessibility reasons", "our night shift team", "the finance department"]
TASKS = [
    "change the email address on my account", "add a colleague to my team", "cancel my subscription",
    "download all my invoices", "connect the calendar", "turn on two-factor authentication", "move a project to another workspace",
    "reset my password", "get a receipt for last month", "use the public API",
]
INFO = ["support hours", "prices for teams of 50", "data retention rules", "upcoming maintenance windows", "refund conditions"]
GROUPS = ["students", "non-profits", "schools", "annual plans", "startups"]
PLANS = ["free", "starter", "business"]
SERVICES = ["phone support", "on-site training", "a free trial for the business plan", "data migration help", "invoices in euros"]

BUG_TEMPLATES = [
    "{Feature} crashes when I {action}.",
    "Since the last update, {feature} {symptom}.",
    "Getting '{error}' every time I {action}.",
    "{Feature} is broken: it {symptom}.",
    "When I {action}, {feature} {symptom}.",
    "Bug report: {feature} {symptom} on {platform}.",
    "Urgent: {feature} {symptom} and my team cannot work.",
    "Every time I {action} I get '{error}'. This started today on {platform}.",
]
FEATURE_TEMPLATES = [
    "It would be great if {feature} could {capability}.",
    "Please add {new_feature} to {feature}.",
    "Could you support {new_feature}? We need it for {reason}.",
    "I'd love an option to {capability}.",
    "Any plans to make {feature} {capability}? It would save us a lot of time.",
    "Suggestion: {new_feature} would make {feature} much more useful.",
    "We would pay more for {new_feature}, especially for {reason}.",
    "Feature idea: let {feature} {capability}.",
]
INQUIRY_TEMPLATES = [
    "How do I {task}?",
    "What are your {info}?",
    "Is there a discount for {group}?",
    "Do you offer {service}?",
    "Hi, could you tell me how to {task}? Thanks!",
    "Where can I read about {feature}? I want to understand how it works before we buy.",
    "Quick question: do you have {service}?",
    "Before we sign up, can you explain your {info}?",
    "How do I {task} on {platform}?",
    "Is {feature} included in the {plan} plan?",
    "Does the {plan} plan come with {service}?",
]


def _ticket(template: str, rng: random.Random) -> str:
    feature = rng.choice(FEATURES)
    text = template.format(
        feature=feature, Feature=feature[0].upper() + feature[1:], action=rng.choice(ACTIONS), symptom=rng.choice(SYMPTOMS),
        error=rng.choice(ERRORS), platform=rng.choice(PLATFORMS), capability=rng.choice(CAPABILITIES),
        new_feature=rng.choice(NEW_FEATURES), reason=rng.choice(REASONS), task=rng.choice(TASKS), info=rng.choice(INFO),
        group=rng.choice(GROUPS), service=rng.choice(SERVICES), plan=rng.choice(PLANS),
    )
    return text[0].upper() + text[1:]


def build_tickets(rng: random.Random, per_label: dict[str, int]) -> list[dict]:
    templates = {"bug": BUG_TEMPLATES, "feature_request": FEATURE_TEMPLATES, "general_inquiry": INQUIRY_TEMPLATES}
    rows, seen = [], set()
    for label, count in per_label.items():
        made, tries = 0, 0
        while made < count:
            tries += 1
            if tries > 100 * count:
                raise RuntimeError(f"the {label} templates cannot make {count} distinct tickets")
            text = _ticket(rng.choice(templates[label]), rng)
            if text not in seen:
                seen.add(text)
                rows.append({"text": text, "label": label})
                made += 1
    return rows


# --------------------------------------------------------------------------- writing


def split_and_write(rows: list[dict], folder: Path, rng: random.Random, fraction: float = 0.2) -> None:
    rng.shuffle(rows)
    validation = []
    for label in sorted({row["label"] for row in rows}):
        of_label = [row for row in rows if row["label"] == label]
        validation += of_label[: round(fraction * len(of_label))]
    train = [row for row in rows if row not in validation]
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in (("train.csv", train), ("validation.csv", validation)):
        with open(folder / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(part)
        print(f"{folder / name}: {len(part)} rows")


def main() -> None:
    rng = random.Random(SEED)
    split_and_write(build_relevance(rng), HERE / "relevance", rng)
    # Unbalanced on purpose, as real ticket queues are: the majority class is about 43%.
    split_and_write(build_tickets(rng, {"bug": 150, "feature_request": 110, "general_inquiry": 90}), HERE / "tickets", rng)


if __name__ == "__main__":
    main()
